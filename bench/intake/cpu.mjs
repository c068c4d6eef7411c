/**
 * Where the CPU went during a measurement window (Linux /proc; elsewhere every
 * figure is null). On 2 cores the load generator, the service and PostgreSQL
 * share the machine, so "CPU ms per request" for each of them is the most
 * direct evidence of what dominates; "other" is everything else on the machine
 * (e.g. another engineer's test run), i.e. the noise.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

const linux = process.platform === 'linux';
// USER_HZ is 100 on every mainstream Linux build.
const TICK_MS = 10;

function readStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm)": state=0, ppid=1, ..., utime=11, stime=12, cutime=13, cstime=14.
    // cutime/cstime hold the CPU of children that exited and were reaped: counting them keeps
    // a process tree's total monotonic when a backend exits inside the window.
    return {
      ppid: Number(f[1]),
      cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS,
      reapedMs: (Number(f[13]) + Number(f[14])) * TICK_MS,
    };
  } catch {
    return undefined;
  }
}

function allPids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/**
 * CPU ms of `root` and all its descendants (PostgreSQL: postmaster + backends + helpers),
 * including descendants that already exited (reaped into their parent's cutime/cstime).
 */
function treeCpuMs(root) {
  const byParent = new Map();
  const stats = new Map();
  for (const pid of allPids()) {
    const st = readStat(pid);
    if (!st) continue;
    stats.set(pid, st);
    if (!byParent.has(st.ppid)) byParent.set(st.ppid, []);
    byParent.get(st.ppid).push(pid);
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    const st = stats.get(pid);
    total += st ? st.cpuMs + st.reapedMs : 0;
    stack.push(...(byParent.get(pid) ?? []));
  }
  return total;
}

function machineFields() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // user nice system idle iowait irq softirq steal guest guest_nice
  return line.trim().split(/\s+/).slice(1).map(Number);
}

/** Busy CPU ms of the whole machine (all cores) from /proc/stat, steal (hypervisor) included. */
function machineBusyMs() {
  const f = machineFields();
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * TICK_MS;
}

/** CPU ms the hypervisor took from this VM, and spent in interrupt handlers (loopback TCP lands here). */
function machineStealIrqMs() {
  const f = machineFields();
  return { steal: f[7] * TICK_MS, irq: (f[5] + f[6]) * TICK_MS };
}

/** The parent of a process, e.g. the postmaster of a backend pid. */
export function parentOf(pid) {
  return linux ? readStat(pid)?.ppid : undefined;
}

/**
 * @param {{ service?: number, echo?: number, postgres?: number }} pids  postgres = the postmaster pid
 */
export function cpuSampler(pids) {
  const take = () => {
    const u = process.cpuUsage();
    return {
      wall: performance.now(),
      client: (u.user + u.system) / 1000,
      service: linux && pids.service ? treeCpuMs(pids.service) : null,
      echo: linux && pids.echo ? (readStat(pids.echo)?.cpuMs ?? null) : null,
      postgres: linux && pids.postgres ? treeCpuMs(pids.postgres) : null,
      machine: linux ? machineBusyMs() : null,
      ...(linux ? machineStealIrqMs() : { steal: null, irq: null }),
    };
  };
  let a;
  let b;
  return {
    start() {
      a = take();
    },
    stop() {
      b = take();
    },
    /** CPU use during the window: cores busy (1.0 = one core) and ms per completed operation. */
    report(completed) {
      if (!a || !b) return null;
      const wall = b.wall - a.wall;
      const d = (k) => (a[k] === null || b[k] === null ? null : b[k] - a[k]);
      const parts = { client: d('client'), service: d('service'), echo: d('echo'), postgres: d('postgres') };
      const machine = d('machine');
      const known = Object.values(parts).reduce((s, v) => s + (v ?? 0), 0);
      const out = { cores: {}, msPerOp: {} };
      const put = (k, v) => {
        if (v === null) return;
        out.cores[k] = Math.round((v / wall) * 100) / 100;
        out.msPerOp[k] = completed > 0 ? Math.round((v / completed) * 1000) / 1000 : null;
      };
      for (const [k, v] of Object.entries(parts)) put(k, v);
      // What this workload alone could do if it had every core: cores ÷ CPU per operation.
      // Robust to other load on the machine (CPU per operation barely moves; throughput does).
      const ownMsPerOp = completed > 0 ? known / completed : null;
      out.ownMsPerOp = ownMsPerOp === null ? null : Math.round(ownMsPerOp * 1000) / 1000;
      out.cpuBoundPerSecond = ownMsPerOp ? Math.round((cpus().length * 1000) / ownMsPerOp) : null;
      if (machine !== null) {
        put('other', Math.max(0, machine - known));
        out.cores.machine = Math.round((machine / wall) * 100) / 100;
        // Shown for diagnosis, not added: steal is not charged to any process (so it lands in
        // "other"); interrupt time may be charged to the process it interrupted or not, per kernel.
        out.coresSteal = Math.round((d('steal') / wall) * 100) / 100;
        out.coresIrq = Math.round((d('irq') / wall) * 100) / 100;
        out.cores.available = cpus().length;
      }
      return out;
    },
  };
}

/** Cores busy on the whole machine over the next `ms` (null off Linux): is anything else running? */
export async function machineBusyCores(ms) {
  if (!linux) return null;
  const a = machineBusyMs();
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return Math.round(((machineBusyMs() - a) / (performance.now() - t)) * 100) / 100;
}
