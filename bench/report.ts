import { SCENARIO_TITLES, type ScenarioResult } from "./scenarios";
import { formatSpread } from "./stats";
import type { TransportReport } from "./transport";

/** The targets of the benchmark issue, checked against one run's figures, and the printed table. */

export interface TargetCheck {
  target: string;
  subject: string;
  measured: number;
  limit: number;
  pass: boolean;
}

export const TARGETS = {
  firstSyncToLimit: 1.5,
  noopToFetch: 1.2,
  scaling50kTo10k: 5.5,
  restToGrpcP50: 1.3,
  peakRssMiB50k: 300,
} as const;

export function evaluateTargets(scenarios: ScenarioResult[], transport: TransportReport | null): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const add = (target: string, subject: string, measured: number, limit: number) =>
    checks.push({ target, subject, measured, limit, pass: measured <= limit });
  for (const s of scenarios) {
    if (s.scenario === "first") add("first sync ≤ 1.5× limit", `N=${s.n}`, s.ratioToLimit, TARGETS.firstSyncToLimit);
    if (s.scenario === "noop") add("no-op re-sync ≤ 1.2× fetch-only", `N=${s.n}`, s.ratioToFetch, TARGETS.noopToFetch);
    add("statements ≤ pages + N/500 + 20", `${s.scenario} N=${s.n}`, s.statements.max, s.statementBound);
    if (s.n === 50_000) add("peak RSS at 50k ≤ 300 MiB", s.scenario, s.peakRssMiB.max, TARGETS.peakRssMiB50k);
  }
  for (const s of scenarios.filter((x) => x.n === 50_000)) {
    const ten = scenarios.find((x) => x.n === 10_000 && x.scenario === s.scenario);
    if (ten) add("50k/10k time ratio ≤ 5.5", s.scenario, s.wallMs.median / ten.wallMs.median, TARGETS.scaling50kTo10k);
  }
  const p50 = (name: string) => transport?.results.find((r) => r.transport === name)?.c1.p50.median;
  const rest = p50("rest");
  const grpc = p50("grpc");
  if (rest !== undefined && grpc !== undefined)
    add("REST p50 ≤ 1.3× gRPC p50", "c=1", rest / grpc, TARGETS.restToGrpcP50);
  return checks;
}

interface Results {
  mode: string;
  machine: Record<string, unknown>;
  runsPerFigure: number;
  scenarios: ScenarioResult[];
  transport: TransportReport | null;
  targets: TargetCheck[];
}

function table(header: string[], rows: string[][]): string {
  const lines = [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`);
  return `${lines.join("\n")}\n`;
}

const f0 = (v: number) => v.toFixed(0);
const f2 = (v: number) => v.toFixed(2);

export function renderReport(results: Results): string {
  let out = `\n## Vault+ list sync benchmarks (${results.mode}; medians of ${results.runsPerFigure} runs, [min–max])\n\n`;
  out += `machine: ${Object.entries(results.machine)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}\n\n`;
  const s = results.scenarios;
  if (s.length > 0) {
    out += "### Sync scenarios\n\n";
    out += table(
      [
        "scenario",
        "N",
        "wall ms",
        "limit ms (fetch + insert)",
        "× limit",
        "× fetch",
        "statements (bound)",
        "rows written",
        "peak RSS MiB",
      ],
      s.map((r) => [
        SCENARIO_TITLES[r.scenario],
        String(r.n),
        formatSpread(r.wallMs),
        `${f0(r.limit.totalMs)} (${f0(r.limit.fetchMs.median)} + ${f0(r.limit.insertMs?.median ?? 0)})`,
        f2(r.ratioToLimit),
        f2(r.ratioToFetch),
        `${formatSpread(r.statements, 0)} (${f0(r.statementBound)})`,
        formatSpread(r.rowsWritten, 0),
        formatSpread(r.peakRssMiB, 0),
      ]),
    );
    out += "\n### Where the time goes (medians, ms)\n\n";
    out += table(
      [
        "scenario",
        "N",
        "wall",
        "fetch span",
        "plan span",
        "apply span",
        "statement waits",
        "CPU (all threads)",
        "floor insert rows",
      ],
      s.map((r) => [
        SCENARIO_TITLES[r.scenario],
        String(r.n),
        f0(r.wallMs.median),
        f0(r.phasesMs.fetch),
        f0(r.phasesMs.plan),
        f0(r.phasesMs.apply),
        f0(r.phasesMs.dbWait),
        f0(r.cpuMs.median),
        String(r.limit.insertRows),
      ]),
    );
  }
  const t = results.transport;
  if (t) {
    out += `\n### Transport overhead: no-op re-sync of a ${t.listSize}-item list (${t.callsAtC1} calls at c=1, ${t.secondsAtC32} s at c=32, per round)\n\n`;
    out += table(
      ["transport", "c=1 p50 ms", "c=1 p99 ms", "c=32 syncs/s", "c=32 p50 ms", "c=32 p99 ms"],
      t.results.map((r) => [
        r.transport,
        formatSpread(r.c1.p50, 2),
        formatSpread(r.c1.p99, 2),
        formatSpread(r.c32.rps, 0),
        formatSpread(r.c32.p50, 1),
        formatSpread(r.c32.p99, 1),
      ]),
    );
  }
  if (results.targets.length > 0) {
    out += "\n### Targets\n\n";
    out += table(
      ["target", "where", "measured", "limit", "result"],
      results.targets.map((c) => [c.target, c.subject, f2(c.measured), f2(c.limit), c.pass ? "pass" : "**MISS**"]),
    );
  }
  return out;
}
