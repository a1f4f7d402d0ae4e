import { formatDuration } from '../config/duration.js';
import type { SpanLine } from './trace.js';

/**
 * A trace as a person reads it (`agentd trace`), pure: one line per span,
 * indented under its parent, children in the order they started, each with
 * its duration and what it used (tokens, cost) or why it failed.
 */

export function formatTraceTree(spans: SpanLine[]): string {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string | null, SpanLine[]>();
  for (const span of spans) {
    // A span whose parent is missing (the run span of a run the daemon died in) is shown at the top.
    const parent = span.parent_span_id !== null && ids.has(span.parent_span_id) ? span.parent_span_id : null;
    const list = children.get(parent) ?? [];
    list.push(span);
    children.set(parent, list);
  }
  for (const list of children.values()) list.sort((a, b) => a.start.localeCompare(b.start) || kindOrder(a) - kindOrder(b));

  const out: string[] = [];
  const walk = (span: SpanLine, prefix: string, childPrefix: string) => {
    out.push(prefix + describe(span));
    const kids = children.get(span.span_id) ?? [];
    kids.forEach((kid, i) => {
      const last = i === kids.length - 1;
      walk(kid, childPrefix + (last ? '└─ ' : '├─ '), childPrefix + (last ? '   ' : '│  '));
    });
  };
  const roots = children.get(null) ?? [];
  if (!roots.some((s) => s.kind === 'run')) out.push('(no run span: the run has not ended, or the daemon stopped during it)');
  for (const root of roots) walk(root, '', '');
  return out.join('\n') + '\n';
}

/** The run span first among spans that start together. */
function kindOrder(span: SpanLine): number {
  return span.kind === 'run' ? 0 : 1;
}

function describe(span: SpanLine): string {
  const a = span.attributes;
  const parts = [span.name, formatDuration(span.duration_ms)];
  if (span.status === 'error') parts.push(`ERROR${typeof a['error.type'] === 'string' ? ` ${a['error.type']}` : ''}`);
  const input = num(a['gen_ai.usage.input_tokens']);
  const output = num(a['gen_ai.usage.output_tokens']);
  if (input !== null || output !== null) parts.push(`tokens ${input ?? 0} in / ${output ?? 0} out`);
  const cost = num(a['agentd.cost_usd']);
  if (cost !== null) parts.push(`$${cost.toFixed(4)}`);
  switch (span.kind) {
    case 'run':
      parts.push(
        `${String(a['agentd.outcome'] ?? '?')}`,
        `agent ${String(a['agentd.agent'] ?? '?')}`,
        `task ${String(a['agentd.task_id'] ?? '?')}`,
        `${String(a['agentd.steps'] ?? 0)} steps, ${String(a['agentd.tool_calls'] ?? 0)} tool calls`,
      );
      if (a['agentd.definition_changed'] === true) parts.push('definition changed');
      break;
    case 'model':
      if (a['gen_ai.response.model'] !== undefined && a['gen_ai.response.model'] !== a['gen_ai.request.model']) parts.push(`answered by ${String(a['gen_ai.response.model'])}`);
      if (num(a['agentd.attempts']) !== null && num(a['agentd.attempts'])! > 1) parts.push(`${String(a['agentd.attempts'])} attempts`);
      break;
    case 'tool':
      if (a['agentd.tool.effect'] !== undefined) parts.push(String(a['agentd.tool.effect']));
      break;
    case 'approval_wait':
      parts.push(`decision ${String(a['agentd.approval.decision'] ?? '?')}`);
      break;
    case 'escalation':
    case 'checkpoint':
      break;
  }
  if (a['agentd.replayed'] === true) parts.push('replayed');
  if (a['agentd.cache_hit'] === true) parts.push('cache hit');
  return parts.join('  ');
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
