// The agentd console (README "Console"). Plain DOM: every text from the home
// (questions, answers, arguments) goes in as a text node, never as HTML.
const token = new URLSearchParams(location.search).get('token') || '';
const main = document.getElementById('main');
const byInput = document.getElementById('by');
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}
const svg = (tag, attrs, ...kids) => {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const kid of kids.flat()) if (kid != null) el.append(kid instanceof Node ? kid : String(kid));
  return el;
};

async function api(path, body) {
  const init = { headers: { 'x-agentd-token': token } };
  if (body !== undefined) Object.assign(init, { method: 'POST', body: JSON.stringify(body), headers: { 'x-agentd-token': token, 'content-type': 'application/json' } });
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.className = bad ? 'show bad' : 'show';
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ''), 3500);
}

const ago = (iso) => {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? `${Math.max(s, 0)}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86400 ? `${Math.round(s / 3600)}h ago` : new Date(iso).toLocaleString();
};
const usd = (n) => `$${(n || 0).toFixed(n >= 1 ? 2 : 4)}`;
const ms = (n) => (n >= 60000 ? `${(n / 60000).toFixed(1)}m` : n >= 1000 ? `${(n / 1000).toFixed(1)}s` : `${Math.round(n)}ms`);
const pill = (text, cls) => h('span', { class: `pill ${cls || String(text).split(' ')[0]}` }, text);
const json = (v) => JSON.stringify(v, null, 2);

// ---- outbox ----
const LABEL = { answer: 'Send answer', continue: 'Continue', approve: 'Approve', deny: 'Deny', cancel: 'Cancel task', retry: 'Retry' };
const STYLE = { answer: 'primary', approve: 'good', continue: 'primary', deny: 'danger', cancel: 'danger' };

function exactCall(item) {
  const d = item.details || {};
  if (item.kind !== 'approval' || !d.tool) return null;
  return h('div', { class: 'call', 'data-test': 'call' }, h('b', {}, d.tool), '(', json(d.args ?? {}), ')');
}

function itemCard(item) {
  const answer = item.decisions.includes('answer') ? h('textarea', { placeholder: 'Your answer, passed to the agent', 'aria-label': 'answer' }) : null;
  const extend = item.decisions.includes('continue') ? h('input', { type: 'text', placeholder: 'extend: steps=20,cost_usd=1', 'aria-label': 'extend budgets', size: 26 }) : null;
  const buttons = item.decisions.map((d) =>
    h('button', { class: STYLE[d] || '', 'data-decision': d, onclick: (e) => decide(item, d, answer, extend, e.target) }, LABEL[d] || d),
  );
  const d = item.details || {};
  const context = Object.keys(d).filter((k) => !['tool', 'args', 'seq', 'call_hash'].includes(k) || item.kind !== 'approval');
  return h('div', { class: 'card item', 'data-id': item.id },
    h('div', { class: 'meta' }, h('span', { class: `kind ${item.kind}` }, item.kind.replace(/_/g, ' ')), h('b', {}, item.agent),
      item.task_id && h('span', {}, `task ${item.task_id}`), h('span', { title: item.created_at }, ago(item.created_at)), h('span', { class: 'mono' }, item.id)),
    item.question && h('div', { class: 'question' }, item.question),
    h('div', { class: 'reason' }, item.reason),
    exactCall(item),
    item.blockers?.length ? h('ul', { class: 'blockers' }, item.blockers.map((b) => h('li', {}, typeof b === 'string' ? b : json(b)))) : null,
    context.length ? h('details', {}, h('summary', {}, 'context'), h('pre', {}, json(Object.fromEntries(context.map((k) => [k, d[k]]))))) : null,
    h('div', { class: 'actions' }, answer, extend, buttons),
  );
}

async function decide(item, decision, answerEl, extendEl, button) {
  const body = { decision, by: byInput.value.trim() || undefined };
  const answer = answerEl?.value.trim();
  if (decision === 'answer' && !answer) return toast('Write an answer first', true);
  if (answer && ['answer', 'continue', 'approve'].includes(decision)) body.answer = answer;
  if (decision === 'continue' && extendEl?.value.trim()) body.extend = extendEl.value.trim();
  button.disabled = true;
  try {
    await api(`/api/items/${encodeURIComponent(item.id)}/resolve`, body);
    toast(`${item.id}: ${decision}`);
    await refresh();
  } catch (err) {
    toast(err.message, true);
    button.disabled = false;
  }
}

async function viewOutbox() {
  const { open, resolved, problems } = await api('/api/items');
  setBadge('badge-outbox', open.length);
  return [
    h('h2', {}, open.length ? `${open.length} waiting for a person` : 'Outbox'),
    problems.map((p) => h('div', { class: 'card reason' }, p)),
    open.length ? open.map(itemCard) : h('div', { class: 'card empty' }, 'Nothing is waiting for you.'),
    resolved.length ? [h('h3', {}, 'Recently resolved'), table(['Item', 'Kind', 'Decision', 'By', 'When'], resolved.map((i) =>
      h('tr', {}, h('td', { class: 'mono' }, i.id), h('td', {}, i.kind), h('td', {}, i.resolution?.decision, i.resolution?.answer ? ` — ${i.resolution.answer}` : ''), h('td', {}, i.resolution?.by ?? '-'), h('td', {}, ago(i.resolution?.at)))))] : null,
  ];
}

// ---- agents ----
function table(head, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))), h('tbody', {}, rows));
}

function circuitTable(list, what) {
  if (!list.length) return h('div', { class: 'card empty' }, `No ${what} called yet.`);
  return table([what === 'models' ? 'Model' : 'Tool', 'State', 'Failures', 'Opened'], list.map((c) => h('tr', {}, h('td', { class: 'mono' }, c.model), h('td', {}, pill(c.state)), h('td', { class: 'num' }, c.failures), h('td', {}, ago(c.opened_at)))));
}

async function viewAgents() {
  const { daemon, agents, circuits } = await api('/api/agents');
  const cards = agents.map((a) => {
    const r = a.run;
    return h('div', { class: 'card' },
      h('div', { class: 'meta' }, h('b', { style: 'font-size:15px;color:#1d2330' }, a.name), pill(a.state, a.state === 'waiting for a person' ? 'waiting' : a.state)),
      r ? [h('div', { class: 'bar' }, h('i', { style: `width:${Math.min(100, (100 * r.task_steps) / Math.max(1, r.max_steps))}%` })),
        h('div', { class: 'meta' }, `step ${r.task_steps}/${r.max_steps}`, `${r.tool_calls} tool calls`, usd(r.task_cost_usd), `task ${r.task_id}`)] : null,
      h('div', { class: 'kv', style: 'margin-top:8px' }, h('span', {}, 'inbox'), h('span', {}, a.inbox), h('span', {}, 'open items'), h('span', {}, a.open_items),
        h('span', {}, 'spend today'), h('span', {}, usd(a.spend_today_usd)), a.last_error ? [h('span', {}, 'last error'), h('span', {}, `${a.last_error.category}: ${a.last_error.message}`)] : null),
    );
  });
  return [
    h('h2', {}, 'Agents'),
    h('div', { class: 'meta', style: 'margin:-8px 0 12px' }, `daemon ${daemon.state}`, `pid ${daemon.pid}`, `up ${ms(daemon.uptime_ms)}`),
    agents.length ? h('div', { class: 'grid' }, cards) : h('div', { class: 'card empty' }, 'No agents.'),
    h('h3', {}, 'Model circuits'), circuitTable(circuits.models, 'models'),
    h('h3', {}, 'Tool circuits'), circuitTable(circuits.tools, 'tools'),
  ];
}

// ---- runs and traces ----
const filters = { agent: '', status: '', search: '' };
let selectedRun = null;

async function viewRuns() {
  const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  const [runs, { agents }] = await Promise.all([api(`/api/runs?${q}`), api('/api/agents')]);
  const select = (key, options) => h('select', { 'aria-label': key, onchange: (e) => { filters[key] = e.target.value; void refresh(); } },
    options.map(([v, label]) => h('option', { value: v, selected: filters[key] === v }, label)));
  const search = h('input', { type: 'text', placeholder: 'task or run id', value: filters.search, onchange: (e) => { filters.search = e.target.value; void refresh(); } });
  const rows = runs.map((r) => h('tr', { class: `click${selectedRun === r.run_id ? ' sel' : ''}`, onclick: () => { selectedRun = r.run_id; void refresh(); } },
    h('td', { title: r.started_at }, ago(r.started_at)), h('td', {}, r.agent), h('td', { class: 'mono' }, r.task_id), h('td', {}, pill(r.status)),
    h('td', { class: 'num' }, r.steps), h('td', { class: 'num' }, r.tool_calls), h('td', { class: 'num' }, usd(r.cost_usd)), h('td', { class: 'num' }, ms(r.duration_ms))));
  return [
    h('h2', {}, 'Runs'),
    h('div', { class: 'filters' }, select('agent', [['', 'all agents'], ...agents.map((a) => [a.name, a.name])]),
      select('status', [['', 'any status'], ...['done', 'failed', 'escalated', 'limit', 'interrupted', 'cancelled', 'dead_letter'].map((s) => [s, s])]), search),
    selectedRun ? await traceCard(selectedRun) : null,
    runs.length ? table(['Started', 'Agent', 'Task', 'Status', 'Steps', 'Tools', 'Cost', 'Time'], rows) : h('div', { class: 'card empty' }, 'No runs match.'),
  ];
}

async function traceCard(runId) {
  let spans;
  try {
    spans = await api(`/api/runs/${encodeURIComponent(runId)}/trace`);
  } catch (err) {
    return h('div', { class: 'card' }, `Run ${runId}: ${err.message}`);
  }
  const t0 = Math.min(...spans.map((s) => Date.parse(s.start)));
  const t1 = Math.max(...spans.map((s) => Date.parse(s.end)));
  const total = Math.max(1, t1 - t0);
  const ordered = [...spans].sort((a, b) => (a.kind === 'run' ? -1 : b.kind === 'run' ? 1 : a.start.localeCompare(b.start)));
  const rows = ordered.map((s) => {
    const detail = h('pre', { hidden: true }, json(s.attributes));
    const left = (100 * (Date.parse(s.start) - t0)) / total;
    return [h('div', { class: 'tl', title: `${s.kind} ${s.status}`, onclick: () => (detail.hidden = !detail.hidden) },
      h('span', { class: 'name' }, s.kind === 'run' ? s.name : `  ${s.name}`),
      h('span', { class: 'track' }, h('i', { class: `k-${s.kind}${s.status === 'error' ? ' err' : ''}`, style: `left:${left}%;width:${Math.max(0.4, (100 * s.duration_ms) / total)}%` })),
      h('span', { class: 'num' }, ms(s.duration_ms))), detail];
  });
  const kinds = [...new Set(spans.map((s) => s.kind))];
  return h('div', { class: 'card' }, h('div', { class: 'meta' }, h('b', {}, `Trace of ${runId}`), `${spans.length} spans`, ms(total),
    h('button', { onclick: () => { selectedRun = null; void refresh(); } }, 'Close')),
    h('div', { class: 'legend' }, kinds.map((k) => h('span', {}, h('i', { class: `k-${k}` }), k))), h('div', { class: 'timeline' }, rows));
}

// ---- spend ----
const COLORS = ['#5c7cfa', '#f59f00', '#40c057', '#e64980', '#15aabf', '#7950f2', '#fd7e14', '#82c91e'];

async function viewSpend() {
  const { days, agents } = await api('/api/spend?days=14');
  const names = Object.keys(agents).sort();
  const totals = days.map((_, i) => names.reduce((sum, a) => sum + agents[a][i], 0));
  const max = Math.max(...totals, 0.0001);
  const W = 760, H = 240, L = 56, B = 28, bw = (W - L) / days.length;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': 'spend per agent and day' });
  for (let g = 0; g <= 4; g++) {
    const y = H - B - ((H - B - 10) * g) / 4;
    chart.append(svg('line', { x1: L, x2: W, y1: y, y2: y, stroke: '#e9ecef' }), svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, usd((max * g) / 4)));
  }
  days.forEach((day, i) => {
    let y = H - B;
    names.forEach((a, n) => {
      const hgt = ((H - B - 10) * agents[a][i]) / max;
      if (hgt > 0) chart.append(svg('rect', { x: L + i * bw + 4, y: y - hgt, width: bw - 8, height: hgt, rx: 2, fill: COLORS[n % COLORS.length] }, svg('title', {}, `${a} ${day}: ${usd(agents[a][i])}`)));
      y -= hgt;
    });
    if (i % 2 === 0 || days.length <= 8) chart.append(svg('text', { x: L + i * bw + bw / 2, y: H - 10, 'text-anchor': 'middle' }, day.slice(5)));
  });
  return [
    h('h2', {}, 'Spend per agent and day'),
    h('div', { class: 'card' }, h('div', { class: 'legend' }, names.map((a, n) => h('span', {}, h('i', { style: `background:${COLORS[n % COLORS.length]}` }), a))),
      names.length ? chart : h('div', { class: 'empty' }, 'No spend in the last 14 days.')),
    names.length ? table(['Agent', 'Last 14 days', 'Today'], names.map((a) => h('tr', {}, h('td', {}, a), h('td', { class: 'num' }, usd(agents[a].reduce((x, y) => x + y, 0))), h('td', { class: 'num' }, usd(agents[a][days.length - 1]))))) : null,
  ];
}

// ---- dead letters ----
async function viewDeadLetters() {
  const list = await api('/api/dead-letters');
  setBadge('badge-dlq', list.length);
  const retry = async (d, button) => {
    button.disabled = true;
    try {
      await api(`/api/dead-letters/${encodeURIComponent(d.agent)}/${encodeURIComponent(d.id)}/retry`, {});
      toast(`${d.id} is back in ${d.agent}'s inbox`);
      await refresh();
    } catch (err) {
      toast(err.message, true);
      button.disabled = false;
    }
  };
  return [
    h('h2', {}, 'Dead letters'),
    list.length ? table(['Agent', 'Task', 'Goal', 'Error', 'Attempts', 'When', ''], list.map((d) => h('tr', {},
      h('td', {}, d.agent), h('td', { class: 'mono' }, d.id), h('td', {}, d.goal ?? '-'), h('td', {}, d.error ? `${d.error.category}: ${d.error.message}` : '-'),
      h('td', { class: 'num' }, d.attempts ?? '-'), h('td', {}, ago(d.at)), h('td', {}, h('button', { onclick: (e) => retry(d, e.target) }, 'Retry')))))
      : h('div', { class: 'card empty' }, 'No dead letters.'),
  ];
}

// ---- shell ----
const VIEWS = { outbox: viewOutbox, agents: viewAgents, runs: viewRuns, spend: viewSpend, 'dead-letters': viewDeadLetters };
const current = () => (VIEWS[location.hash.slice(1)] ? location.hash.slice(1) : 'outbox');
function setBadge(id, n) {
  $(id).textContent = n > 0 ? String(n) : '';
}

let rendering = null;
let again = false;
async function refresh() {
  if (rendering) {
    again = true;
    return rendering;
  }
  rendering = (async () => {
    const name = current();
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.view === name);
    try {
      // Keep what the person is typing: a live update re-renders only when nothing is being written.
      const typing = main.contains(document.activeElement) && ['TEXTAREA', 'INPUT'].includes(document.activeElement.tagName) && document.activeElement.value;
      const content = await VIEWS[name]();
      if (!typing) main.replaceChildren(...[content].flat(Infinity).filter(Boolean));
      main.dataset.view = name;
      if (name !== 'outbox') api('/api/items').then((d) => setBadge('badge-outbox', d.open.length), () => undefined);
    } catch (err) {
      main.replaceChildren(h('div', { class: 'card empty' }, `Could not load: ${err.message}`));
    }
  })();
  await rendering;
  rendering = null;
  if (again) {
    again = false;
    await refresh();
  }
}

function listen() {
  const events = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  events.addEventListener('open', () => $('live').classList.remove('off'));
  events.addEventListener('error', () => $('live').classList.add('off'));
  events.addEventListener('change', () => void refresh());
}

byInput.value = localStorage.getItem('agentd.by') || '';
byInput.addEventListener('change', () => localStorage.setItem('agentd.by', byInput.value.trim()));
api('/api/me').then((me) => (byInput.placeholder = me.by), () => undefined);
window.addEventListener('hashchange', () => void refresh());
listen();
void refresh();
