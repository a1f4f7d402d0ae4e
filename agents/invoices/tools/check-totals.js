// check_totals: do the line items add up to the subtotal, and subtotal + tax to
// the total? Arguments arrive as JSON on stdin; the result is JSON on stdout.
// Money is compared in whole cents, because 0.1 + 0.2 !== 0.3 in floating point.
import { readFileSync } from 'node:fs';

const cents = (value) => Math.round(Number(value) * 100);
const money = (c) => c / 100;

const args = JSON.parse(readFileSync(0, 'utf8'));
const items = Array.isArray(args.line_items) ? args.line_items : [];
const problems = [];

const subtotal = items.reduce((sum, item) => sum + cents(item.amount), 0);
items.forEach((item, i) => {
  if (typeof item.quantity === 'number' && typeof item.unit_price === 'number' && cents(item.quantity * item.unit_price) !== cents(item.amount)) {
    problems.push(`line_items[${i}]: ${item.quantity} x ${item.unit_price} is ${money(cents(item.quantity * item.unit_price))}, not ${item.amount}`);
  }
});
if (subtotal !== cents(args.subtotal)) problems.push(`the line items add up to ${money(subtotal)}, not the subtotal ${args.subtotal}`);
const total = cents(args.subtotal) + cents(args.tax);
if (total !== cents(args.total)) problems.push(`subtotal ${args.subtotal} + tax ${args.tax} is ${money(total)}, not the total ${args.total}`);

process.stdout.write(JSON.stringify({ ok: problems.length === 0, expected_subtotal: money(subtotal), expected_total: money(total), problems }) + '\n');
