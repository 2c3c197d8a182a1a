/** Turns results into the markdown table, the JSON record and the SVG plots. */
import type { Cell } from './cells';
import type { Result } from './runner';

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '–');

function baseline(results: Result[], cell: string, server: string): Result | undefined {
  return results.find((r) => r.cell === cell && r.server === server && r.status === 'ok');
}

/** The rounds behind a median: their range as % of it, and any that failed. */
function spread(r: Result): string {
  if (!r.rounds || r.rounds.of === 1) return '1';
  const { ok, of, msgsPerS } = r.rounds;
  const mid = r.load!.msgs_per_s;
  const pct = (n: number) => Math.round((100 * n) / mid);
  const range = ok > 1 ? ` (${pct(Math.min(...msgsPerS))}–${pct(Math.max(...msgsPerS))} %)` : '';
  return `${ok}/${of}${range}`;
}

/** The share of the server's CPU that other work may have in a window before its row is called less sure. */
const SHARED_CPU = 0.05;

/** Server CPU-seconds per GiB served, from bytes per server CPU-second. */
const cpuPerGiB = (bytesPerCpuS: number | null | undefined) => (bytesPerCpuS ? 2 ** 30 / bytesPerCpuS : undefined);

/** One markdown table per cell; ratios against node:net, the pure-Rust reference (echo or proxy) and (UDP) the plain C server of the same run. */
export function markdown(results: Result[], cells: Cell[]): string {
  const out: string[] = [];
  for (const cell of cells) {
    const rows = results.filter((r) => r.cell === cell.id);
    if (rows.length === 0) continue;
    // Chat cells compare the same chat server on node:net and on muxnet; proxy cells, the node:net proxy; file cells, createReadStream().pipe().
    const nodeId = { echo: 'node', chat: 'chat-node', proxy: 'proxy-node', file: 'file-node' }[cell.servers];
    const node = baseline(results, cell.id, nodeId)?.load;
    // The pure-Rust reference of the cell's kind: the echo server, or for proxy cells the proxy.
    const rust = baseline(results, cell.id, cell.servers === 'proxy' ? 'proxy-rust' : 'rust')?.load;
    // UDP cells: the plain C recvfrom/sendto server, issue 14's yardstick.
    const c = baseline(results, cell.id, 'c-plain')?.load;
    out.push(`### ${cell.id}`, '');
    if (cell.group === 'memory') {
      const nodeMem = baseline(results, cell.id, nodeId)?.bytesPerIdle;
      out.push('| server | wake | idle connections | bytes per idle connection | × node:net | server RSS MB, before → with them |', '| --- | --- | ---: | ---: | ---: | ---: |');
      for (const r of rows) {
        const mb = (kb: number | null | undefined) => fmt(kb === null || kb === undefined ? kb : kb / 1024, 1);
        out.push(
          r.status === 'ok'
            ? `| ${r.label} | ${r.wake} | ${fmt(r.idleHeld)} | ${fmt(r.bytesPerIdle)} | ${ratio(r.bytesPerIdle, nodeMem)} | ${mb(r.rssBeforeKb)} → ${mb(r.load?.server_rss_kb)} |`
            : `| ${r.label} | ${r.wake} | | ${r.status}: ${r.reason} | | |`,
        );
      }
      const capped = rows.find((r) => r.capped)?.capped;
      if (capped) out.push('', `Fewer connections than the cell asks for: ${capped}.`);
    } else if (cell.group === 'file') {
      // A download's "message" is a byte: msgs per server CPU-s is bytes per CPU-s.
      out.push('| server | wake | MB/s | rounds | server CPU-s per GiB | × node:net | errors |', '| --- | --- | ---: | ---: | ---: | ---: | ---: |');
      for (const r of rows) {
        const l = r.load;
        if (r.status !== 'ok' || !l) {
          out.push(`| ${r.label} | ${r.wake} | ${r.status}: ${r.reason} | | | | |`);
          continue;
        }
        const cpu = cpuPerGiB(l.msgs_per_server_cpu_s);
        out.push(`| ${r.label} | ${r.wake} | ${fmt(l.mb_per_s, 1)} | ${spread(r)} | ${fmt(cpu, 3)} | ${ratio(cpu, cpuPerGiB(node?.msgs_per_server_cpu_s))} | ${l.errors + l.verification_errors} |`);
      }
    } else {
      out.push(
        '| server | wake | msgs/s | rounds | × node | MB/s | p50 µs | p99 µs | p99.9 µs | msgs per server CPU-s | × node | × rust | × C plain | events/turn | syscalls/event | lost | errors |',
        '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      );
      for (const r of rows) {
        const l = r.load;
        if (r.status !== 'ok' || !l) {
          out.push(`| ${r.label} | ${r.wake} | ${r.status}: ${r.reason} | | | | | | | | | | | | | | |`);
          continue;
        }
        const errors = l.errors + l.verification_errors;
        // From the server's own reactor counters, over the whole cell (muxnet servers).
        const x = r.reactor;
        const perTurn = x && x.turns > 0 ? fmt(x.events / x.turns, 1) : '–';
        const perEvent = x && x.events > 0 ? fmt(x.syscalls / x.events, 2) : '–';
        out.push(
          `| ${r.label} | ${r.wake} | ${fmt(l.msgs_per_s)} | ${spread(r)} | ${ratio(l.msgs_per_s, node?.msgs_per_s)} | ${fmt(l.mb_per_s, 1)} | ${fmt(l.p50_us)} | ${fmt(l.p99_us)} | ${l.p999_us === null ? '–' : fmt(l.p999_us)} | ` +
            `${fmt(l.msgs_per_server_cpu_s)} | ${ratio(l.msgs_per_server_cpu_s, node?.msgs_per_server_cpu_s)} | ${ratio(l.msgs_per_server_cpu_s, rust?.msgs_per_server_cpu_s)} | ` +
            `${ratio(l.msgs_per_server_cpu_s, c?.msgs_per_server_cpu_s)} | ${perTurn} | ${perEvent} | ${l.lost === null || l.lost === undefined ? '–' : fmt(l.lost)} | ${errors} |`,
        );
      }
      // The percentiles count answered requests only: a server that starves some connections
      // shows the served ones, and one that stops answering a connection shows what it answered
      // before. Say so where it happened.
      for (const r of rows.filter((x) => (x.load?.starved ?? 0) > 0 || (x.load?.stalled ?? 0) > 0)) {
        const l = r.load!;
        const ms = (us: number | null | undefined) => (us == null ? '–' : fmt(us / 1000, 1));
        out.push(
          '',
          `${r.label}: ${fmt(l.starved ?? 0)} connections got no echo in the measured window, ${fmt(l.stalled ?? 0)} had a request waiting ` +
            `half of it (a second at least) when it closed; counting the requests still waiting then at their age, p99 / p99.9 ${ms(l.p99_waiting_us)} / ${ms(l.p999_waiting_us)} ms.`,
        );
      }
      for (const r of rows.filter((x) => x.redisCpu)) {
        const { server, redis } = r.redisCpu!;
        out.push('', `${r.label}: Redis used ${fmt(redis, 2)} CPU-s to the servers' ${fmt(server, 2)} over the run, ${fmt((100 * redis) / (redis + server))} % of the CPU.`);
      }
    }
    for (const r of rows.filter((x) => x.status === 'ok' && x.load?.said)) out.push('', `${r.label}: ${fmt(r.load!.errors)} connection errors; the load client: ${r.load!.said}`);
    // A server's figures are its own only where it had its CPU to itself: say where it did not.
    for (const r of rows) {
      const l = r.load;
      const other = l?.server_core_other_s;
      if (r.status !== 'ok' || !l || other == null || other <= SHARED_CPU * l.duration_s) continue;
      out.push('', `${r.label}: other work (processes, the hypervisor's steal) had ${fmt((100 * other) / l.duration_s)} % of the server's CPU in the window; its figures are less sure.`);
    }
    out.push('');
  }
  return out.join('\n');
}

interface Series {
  label: string;
  points: [number, number][];
}

/** A log-x line chart, one line per server. */
function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 720;
  const H = 400;
  const m = { l: 80, r: 200, t: 40, b: 50 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  if (xs.length === 0) return '';
  const lx = (x: number) => Math.log10(Math.max(x, 1));
  const [x0, x1] = [Math.min(...xs.map(lx)), Math.max(...xs.map(lx))];
  const y1 = Math.max(...ys) * 1.1 || 1;
  const px = (x: number) => m.l + ((lx(x) - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - (y / y1) * (H - m.t - m.b);
  // A full run plots eleven servers: twelve colours, and past them the same dashed.
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000000', '#aec7e8'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${xLabel}</text>`,
    `<text x="15" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 15 ${(m.t + H - m.b) / 2})">${yLabel}</text>`,
  ];
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<text x="${px(x)}" y="${H - m.b + 16}" text-anchor="middle">${x.toLocaleString('en-US')}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const y = (y1 / 4) * i;
    parts.push(`<text x="${m.l - 6}" y="${py(y) + 4}" text-anchor="end">${fmt(y)}</text>`, `<line x1="${m.l}" y1="${py(y)}" x2="${W - m.r}" y2="${py(y)}" stroke="#eee"/>`);
  }
  series.forEach((s, i) => {
    const color = colors[i % colors.length];
    const dash = i >= colors.length ? ' stroke-dasharray="6 3"' : '';
    const pts = s.points.sort((a, b) => a[0] - b[0]).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`);
    const key = m.t + i * 20 + 6;
    parts.push(`<line x1="${W - m.r + 12}" y1="${key}" x2="${W - m.r + 28}" y2="${key}" stroke="${color}" stroke-width="3"${dash}/>`, `<text x="${W - m.r + 32}" y="${key + 4}">${s.label}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function seriesBy(results: Result[], cells: Cell[], pick: (c: Cell) => boolean, x: (c: Cell) => number): Series[] {
  const bySeries = new Map<string, Series>();
  for (const r of results) {
    const cell = cells.find((c) => c.id === r.cell);
    if (!cell || !pick(cell) || r.status !== 'ok' || !r.load) continue;
    const label = `${r.label} (${r.wake})`;
    if (!bySeries.has(label)) bySeries.set(label, { label, points: [] });
    bySeries.get(label)!.points.push([x(cell), r.load.msgs_per_s]);
  }
  return [...bySeries.values()];
}

/** Throughput vs connections (64 B, depth 1) and vs idle connections. */
export function plots(results: Result[], cells: Cell[]): { throughput: string; idle: string } {
  return {
    throughput: lineChart(
      'TCP echo, 64 B, pipeline 1',
      'connections',
      'messages/s',
      seriesBy(results, cells, (c) => c.group === 'echo' && c.payload === 64 && c.depth === 1, (c) => c.connections),
    ),
    idle: lineChart(
      'TCP echo with 100 active + N idle connections',
      'idle connections (+1)',
      'messages/s',
      seriesBy(results, cells, (c) => c.group === 'idle', (c) => c.idle + 1),
    ),
  };
}
