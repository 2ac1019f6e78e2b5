// The strategy benchmark's chart: a Vega-Lite spec built from the report (pure), rendered to SVG headless
// by Vega itself (no browser, no canvas).
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Field } from 'vega-lite/types_unstable/channeldef.js';
import type { LayerSpec, UnitSpec } from 'vega-lite/types_unstable/spec/index.js';
import { DISPATCHERS } from './dispatchers.ts';
import type { StrategiesReport } from './report.ts';

const COLORS: Record<(typeof DISPATCHERS)[number], string> = {
  ledger: '#1b7837',
  naive: '#d6604d',
  approximate: '#f4a582',
  'keda-accurate': '#4393c3',
};

const color = {
  field: 'dispatcher',
  type: 'nominal',
  title: 'Dispatcher',
  sort: [...DISPATCHERS],
  scale: { domain: [...DISPATCHERS], range: DISPATCHERS.map((d) => COLORS[d]) },
} as const;

/** A dashed horizontal line at `value`. */
function referenceLine(value: number): UnitSpec<Field> {
  return {
    data: { values: [{ value }] },
    mark: { type: 'rule', strokeDash: [4, 3], color: '#444' },
    encoding: { y: { field: 'value', type: 'quantitative' } },
  };
}

function bars(args: {
  title: string;
  field: string;
  format: string;
  reference?: number;
  values: Array<Record<string, string | number>>;
  /** Profile labels in the order they ran. */
  profiles: string[];
}): LayerSpec<Field> {
  const bar: UnitSpec<Field> = {
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'profile', type: 'nominal', title: null, sort: args.profiles, axis: { labelAngle: 0 } },
      xOffset: { field: 'dispatcher', type: 'nominal', sort: [...DISPATCHERS] },
      y: { field: args.field, type: 'quantitative', title: null, axis: { format: args.format } },
      color,
    },
  };
  const layer = args.reference === undefined ? [bar] : [bar, referenceLine(args.reference)];
  return { title: args.title, width: 220, height: 170, data: { values: args.values }, layer };
}

/** The Vega-Lite spec: running invocations over time per profile, then the headline figures as bars. */
export function chartSpec(report: StrategiesReport): TopLevelSpec {
  const labelOf = new Map(report.profiles.map((p) => [p.id, p.label]));
  const timelines = report.profiles.map((profile): LayerSpec<Field> => {
    const points = report.runs
      .filter((run) => run.profile === profile.id)
      .flatMap((run) => run.timeline.map(([second, live]) => ({ dispatcher: run.dispatcher, second, live })));
    return {
      title: `Invocations running at once, ${profile.label} (dashed: cap ${profile.cap})`,
      width: 460,
      height: 200,
      layer: [
        {
          data: { values: points },
          mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 },
          encoding: {
            x: { field: 'second', type: 'quantitative', title: 'seconds since the first task' },
            y: { field: 'live', type: 'quantitative', title: 'running' },
            color,
          },
        },
        referenceLine(profile.cap),
      ],
    };
  });
  const values = report.runs.map((run) => ({
    profile: labelOf.get(run.profile) ?? run.profile,
    dispatcher: run.dispatcher,
    wasted: run.figures.wasted,
    perTask: run.figures.invocationsPerTask,
    vsIdeal: run.figures.makespanVsIdeal,
    waitP99: run.figures.waitP99Seconds,
  }));
  const k = report.profiles[0]?.tasksPerInvocation ?? 1;
  const profiles = report.profiles.map((p) => p.label);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Dispatch strategies on the local stack',
      subtitle: `one run of ${report.at}; every figure from the workers' own journal`,
    },
    config: { font: 'sans-serif', view: { stroke: null }, axis: { grid: true, gridOpacity: 0.4 } },
    vconcat: [
      { hconcat: timelines },
      {
        hconcat: [
          bars({ title: 'Wasted invocations', field: 'wasted', format: 'd', values, profiles }),
          bars({ title: `Invocations per task (dashed: 1/${k})`, field: 'perTask', format: '.2f', reference: 1 / k, values, profiles }),
          bars({ title: 'Makespan ÷ ideal (dashed: 1)', field: 'vsIdeal', format: '.2f', reference: 1, values, profiles }),
          bars({ title: 'Task wait p99, seconds', field: 'waitP99', format: 'd', values, profiles }),
        ],
      },
    ],
    resolve: { scale: { color: 'shared' } },
  };
  return spec;
}

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
