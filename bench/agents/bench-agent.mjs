// The benchmark's agent: the raw protocol and nothing else (no SDK, no
// readline), so what the bench times is agentd and not the agent. What it does
// comes from its task's input.mode:
//   result            answer at once; output.first_at is the wall clock (ms, sub-ms
//                     precision) taken right before that first stdout line
//   steps             input.steps model calls through the daemon, each paired with
//                     a direct HTTP call to the same provider (input.url); output
//                     holds both series of durations (ms)
//   endpoint          input.steps chat completions at the run's endpoint
//                     ($OPENAI_BASE_URL), plain and streamed, each next to the
//                     same request sent straight to input.url; output holds the
//                     durations and the times to the first byte (ms)
//   checkpoint_sleep  checkpoint, then sleep input.sleep_ms (capped at 10 min),
//                     then answer; a stop message gets a handoff and an exit
// Whatever the mode, the agent exits when its stdin closes (its daemon died or
// is done with it), so nothing it started outlives the bench.
const now = () => performance.timeOrigin + performance.now();
const send = (message) => process.stdout.write(JSON.stringify(message) + '\n');
const pending = new Map();
let nextId = 1;
let started = false;
let buffered = '';

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (line.trim() !== '') onMessage(JSON.parse(line));
  }
});
process.stdin.on('end', () => process.exit(0));

function onMessage(message) {
  if (message.type === 'start' && !started) {
    started = true;
    main(message).catch((err) => {
      process.stderr.write(`bench agent failed: ${err.stack ?? err}\n`);
      process.exit(1);
    });
  } else if (message.type === 'stop') {
    send({ type: 'handoff', summary: `stopped: ${message.reason}`, next_steps: [], state: { stopped: message.reason } });
    setTimeout(() => process.exit(0), 5);
  } else if (message.id !== undefined && pending.has(message.id)) {
    const resolve = pending.get(message.id);
    pending.delete(message.id);
    resolve(message);
  }
}

function call(message) {
  const id = String(nextId++);
  send({ ...message, id });
  return new Promise((resolve) => pending.set(id, resolve));
}

async function main(start) {
  const input = start.task.input ?? {};
  switch (input.mode ?? 'result') {
    case 'result': {
      const firstAt = now();
      send({ type: 'result', output: { first_at: firstAt } });
      return;
    }
    case 'steps':
      return steps(input);
    case 'endpoint':
      return endpoint(input);
    case 'checkpoint_sleep': {
      send({ type: 'checkpoint', state: { phase: 'sleeping', resumed: start.resume.checkpoint !== null } });
      const sleepMs = Math.min(Number(input.sleep_ms ?? 1000), 600_000);
      await new Promise((resolve) => setTimeout(resolve, sleepMs));
      send({ type: 'result', output: { slept_ms: sleepMs } });
      return;
    }
    default:
      throw new Error(`unknown mode ${input.mode}`);
  }
}

/** Model calls through the daemon, each next to the same request sent straight to the provider. */
async function steps(input) {
  const messages = [{ role: 'user', content: 'ping' }];
  const body = JSON.stringify({ model: input.model_name, messages, max_tokens: 16 });
  const direct = [];
  const via = [];
  const viaDaemon = async () => {
    const t = now();
    const reply = await call({ type: 'model', request: { messages, max_tokens: 16 } });
    const ms = now() - t;
    if (reply.type !== 'model_result') throw new Error(`model call refused: ${JSON.stringify(reply)}`);
    via.push(ms);
  };
  const straight = async () => {
    const t = now();
    const res = await fetch(`${input.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body });
    await res.text();
    direct.push(now() - t);
  };
  for (let i = 0; i < input.steps; i++) {
    // Alternate the order so neither series always runs on a warmer path.
    if (i % 2 === 0) {
      await straight();
      await viaDaemon();
    } else {
      await viaDaemon();
      await straight();
    }
  }
  send({ type: 'result', output: { direct, via } });
}

/** One POST: [ms to the first body byte, ms to the end of the body]. */
async function timedPost(url, headers, body) {
  const t = now();
  const res = await fetch(url, { method: 'POST', headers, body });
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  await reader.read();
  const first = now() - t;
  while (!(await reader.read()).done);
  return [first, now() - t];
}

/** Chat completions at the run's endpoint (plain and streamed), each next to the same request sent straight to the provider. */
async function endpoint(input) {
  const messages = [{ role: 'user', content: 'ping' }];
  const json = { 'content-type': 'application/json' };
  const auth = { ...json, authorization: `Bearer ${process.env.OPENAI_API_KEY}` };
  const body = (extra = {}) => JSON.stringify({ model: input.model_name, messages, max_tokens: 16, ...extra });
  const out = { direct: [], directFirst: [], via: [], viaStreamFirst: [] };
  const straight = async () => {
    const [first, all] = await timedPost(`${input.url}/chat/completions`, json, body());
    out.direct.push(all);
    out.directFirst.push(first);
  };
  const via = async () => {
    out.via.push((await timedPost(`${process.env.OPENAI_BASE_URL}/chat/completions`, auth, body()))[1]);
  };
  const viaStreamed = async () => {
    out.viaStreamFirst.push((await timedPost(`${process.env.OPENAI_BASE_URL}/chat/completions`, auth, body({ stream: true, stream_options: { include_usage: true } })))[0]);
  };
  for (let i = 0; i < input.steps; i++) {
    // Alternate the order so neither series always runs on a warmer path.
    const order = i % 2 === 0 ? [straight, via, viaStreamed] : [viaStreamed, via, straight];
    for (const step of order) await step();
  }
  send({ type: 'result', output: out });
}
