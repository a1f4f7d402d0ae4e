import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { luhnValid, redactText, redactValue } from '../src/observe/redact.js';

describe('redaction of trace payloads', () => {
  it('masks email addresses', () => {
    assert.equal(redactText('write to jane.doe+billing@example.co.uk today'), 'write to [redacted:email] today');
    assert.equal(redactText('a@b.io and x_y@sub.example.com'), '[redacted:email] and [redacted:email]');
  });

  it('masks phone numbers in the shapes people write them', () => {
    for (const phone of ['+1 555 123 4567', '(555) 123-4567', '555-123-4567', '555.123.4567', '+44 20 7946 0958', '+49-30-1234567']) {
      assert.equal(redactText(`call ${phone} now`), 'call [redacted:phone] now', phone);
    }
  });

  it('keeps dates, times, versions and amounts that only look numeric', () => {
    const text = 'on 2024-01-15 at 12:30, version 1.2.3, total 1234.50 EUR, order #42, 3 items';
    assert.equal(redactText(text), text);
  });

  it('masks Luhn-valid card numbers, grouped or not', () => {
    for (const card of ['4111111111111111', '4111 1111 1111 1111', '5555-5555-5555-4444', '378282246310005']) {
      assert.ok(luhnValid(card.replace(/[ -]/g, '')), `${card} is a valid test card`);
      assert.equal(redactText(`card ${card} exp 12/29`), 'card [redacted:card] exp 12/29', card);
    }
  });

  it('keeps digit runs that fail the Luhn check', () => {
    for (const digits of ['4111111111111112', '1234567812345678', '1234 5678 1234 5678']) {
      assert.equal(luhnValid(digits.replace(/ /g, '')), false, `${digits} fails Luhn`);
      assert.equal(redactText(`ref ${digits}`), `ref ${digits}`, digits);
    }
  });

  it('masks sk- keys, bearer tokens and assigned secrets', () => {
    assert.equal(redactText('OPENAI_API_KEY is sk-proj-abcdEFGH1234ijklMNOP5678'), 'OPENAI_API_KEY is [redacted:key]');
    assert.equal(redactText('key sk-ant-api03-AbCdEfGhIjKlMnOp'), 'key [redacted:key]');
    assert.equal(redactText('Authorization: Bearer abc.DEF-ghi_123456789'), 'Authorization: Bearer [redacted:key]');
    assert.equal(redactText('api_key=q8w7e6r5t4y3'), 'api_key=[redacted:key]');
    assert.equal(redactText('{"password": "hunter22"}'), '{"password": "[redacted:key]"}');
  });

  it('masks JWTs and long hex or base64 secrets, not long words', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    assert.equal(redactText(`token ${jwt}`), 'token [redacted:key]');
    assert.equal(redactText('secret 3f9a7c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d2f4a'), 'secret [redacted:key]');
    assert.equal(redactText('blob QWxhZGRpbjpvcGVuIHNlc2FtZQ0K3x9Zk2Lm8PqRt7Yw=='), 'blob [redacted:key]');
    const prose = 'Supercalifragilisticexpialidocious antidisestablishmentarianism';
    assert.equal(redactText(prose), prose);
  });

  it('redacts every string of a structured payload and keeps its shape', () => {
    const messages = [
      { role: 'user', content: 'I am bob@example.com, card 4111111111111111' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', function: { name: 'charge', arguments: '{"email":"bob@example.com","amount":25}' } }] },
    ];
    assert.deepEqual(redactValue(messages), [
      { role: 'user', content: 'I am [redacted:email], card [redacted:card]' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', function: { name: 'charge', arguments: '{"email":"[redacted:email]","amount":25}' } }] },
    ]);
    assert.equal(messages[0]!.content, 'I am bob@example.com, card 4111111111111111', 'the input is not changed');
  });
});
