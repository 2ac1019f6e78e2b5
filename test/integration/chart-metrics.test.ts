// The chart's alert rules and Grafana dashboard against the metrics a real controller serves: the controller
// process runs against a real kube-apiserver and Postgres, the test reads its /metrics, and every metric name
// that an alert expression, a dashboard panel or a dashboard variable queries must be one of those series.
// Each expression is parsed with the Prometheus team's PromQL grammar (@prometheus-io/lezer-promql), so a
// query that does not parse fails too.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parser } from '@prometheus-io/lezer-promql';
import { parseAllDocuments } from 'yaml';
import { ensureBinaries } from '../../dev/src/binaries.ts';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(ROOT, 'charts', 'lambda-task-pool');

interface Query {
  /** Where it comes from: an alert name, a panel title, a variable. */
  where: string;
  expr: string;
}

interface ParsedQuery extends Query {
  metrics: string[];
  errors: string[];
}

/** The series names a Prometheus scrape of this exposition gets, by the `# TYPE` lines (and the samples). */
function seriesNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      else if (kind === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
      else names.add(name);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample?.[1]) names.add(sample[1]);
  }
  return names;
}

/** Grafana's own variables stand where PromQL wants a duration; label values ($pool) sit inside strings. */
function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

/** The metric names a PromQL expression selects, and its syntax errors. */
function parseQuery(query: Query): ParsedQuery {
  const text = query.expr;
  const tree = parser.parse(text);
  const metrics = new Set<string>();
  const errors: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError)
        errors.push(`syntax error at ${node.from}: ${JSON.stringify(text.slice(Math.max(0, node.from - 20), node.to + 20))}`);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') metrics.add(text.slice(node.from, node.to));
      if (node.name === 'UnquotedLabelMatcher' || node.name === 'QuotedLabelMatcher') {
        const matcher = text.slice(node.from, node.to);
        const byName = /^__name__\s*=\s*"([^"]+)"$/.exec(matcher);
        if (byName?.[1]) metrics.add(byName[1]);
      }
    },
  });
  return { ...query, metrics: [...metrics].sort(), errors };
}

interface JsonObject {
  [key: string]: unknown;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The chart rendered with the alerts and the dashboard on (every alert is on by default). */
async function renderMonitoring(): Promise<JsonObject[]> {
  const { helm } = await ensureBinaries();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      helm,
      [
        'template',
        'ltp',
        CHART,
        '--set',
        'prometheusRule.enabled=true',
        '--set',
        'grafanaDashboard.enabled=true',
        '--set',
        'podMonitor.enabled=true',
      ],
      { maxBuffer: 20_000_000 },
      (error, out, err) => (error ? reject(new Error(`helm template failed: ${err}`)) : resolve(out)),
    );
  });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as unknown)
    .filter(isObject);
}

function alertQueries(objects: JsonObject[]): Query[] {
  const rules = objects.filter((o) => o.kind === 'PrometheusRule');
  expect(rules, 'one PrometheusRule').to.have.lengthOf(1);
  const spec = rules[0]?.spec;
  const queries: Query[] = [];
  for (const group of list(isObject(spec) ? spec.groups : undefined)) {
    for (const rule of list(isObject(group) ? group.rules : undefined)) {
      if (isObject(rule)) queries.push({ where: `alert ${String(rule.alert)}`, expr: String(rule.expr) });
    }
  }
  return queries;
}

function dashboardQueries(objects: JsonObject[]): Query[] {
  const maps = objects.filter((o) => o.kind === 'ConfigMap' && isObject(o.data) && typeof o.data['lambda-task-pool.json'] === 'string');
  expect(maps, 'one dashboard ConfigMap').to.have.lengthOf(1);
  const data = maps[0]?.data;
  const dashboard: unknown = JSON.parse(String(isObject(data) ? data['lambda-task-pool.json'] : ''));
  const queries: Query[] = [];
  const walk = (panels: unknown[]) => {
    for (const panel of panels) {
      if (!isObject(panel)) continue;
      for (const target of list(panel.targets)) {
        if (isObject(target) && typeof target.expr === 'string') {
          queries.push({ where: `panel "${String(panel.title)}" ${String(target.refId)}`, expr: withGrafanaVariables(target.expr) });
        }
      }
      walk(list(panel.panels));
    }
  };
  walk(list(isObject(dashboard) ? dashboard.panels : undefined));
  const templating = isObject(dashboard) ? dashboard.templating : undefined;
  for (const variable of list(isObject(templating) ? templating.list : undefined)) {
    if (!isObject(variable) || variable.type !== 'query') continue;
    const query = isObject(variable.query) ? variable.query.query : variable.query;
    // label_values(<series selector>, <label>): the selector is PromQL.
    const labelValues = /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.exec(String(query));
    expect(labelValues, `variable ${String(variable.name)}: ${String(query)}`).to.not.equal(null);
    queries.push({ where: `variable ${String(variable.name)}`, expr: String(labelValues?.[1]) });
  }
  return queries;
}

/** Each query whose metric names are not all served, or that does not parse, as a readable line. */
function problems(queries: ParsedQuery[], served: Set<string>): string[] {
  const found: string[] = [];
  for (const q of queries) {
    for (const error of q.errors) found.push(`${q.where}: ${error}`);
    if (q.metrics.length === 0) found.push(`${q.where}: selects no metric (${q.expr})`);
    for (const name of q.metrics) if (!served.has(name)) found.push(`${q.where}: ${name} is not served at /metrics`);
  }
  return found;
}

describe("the chart's alerts and dashboard query only metrics the controller serves (real controller, kube-apiserver, Postgres)", function () {
  this.timeout(120_000);
  const namespace = `ltp-metrics-${randomBytes(3).toString('hex')}`;
  let database: TestDatabase | undefined;
  let controller: ControllerProcess | undefined;
  let served = new Set<string>();
  let exposition = '';
  let objects: JsonObject[] = [];

  before(async function () {
    this.timeout(180_000);
    const cp = await sharedControlPlane();
    database = await freshDatabase('chart_metrics');
    const created = await kubectl(['create', 'namespace', namespace]);
    expect(created.code, created.stderr).to.equal(0);
    controller = await startControllerProcess({
      kubeconfig: cp.kubeconfigPath,
      databaseUrl: database.url,
      // No pool is created, so nothing is invoked; the metrics are registered all the same.
      lambdaEndpoint: 'http://127.0.0.1:9',
      namespaces: [namespace],
      leaderElect: { leaseNamespace: namespace, identity: 'chart-metrics' },
    });
    const response = await fetch(`http://127.0.0.1:${controller.port}/metrics`);
    expect(response.status).to.equal(200);
    exposition = await response.text();
    served = seriesNames(exposition);
    objects = await renderMonitoring();
  });

  after(async function () {
    this.timeout(60_000);
    await controller?.stop();
    await database?.close();
    await kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
  });

  it('reads the series names from /metrics as Prometheus stores them (a histogram is only its _bucket, _sum and _count)', () => {
    expect(exposition).to.match(/^# TYPE ltp_reconcile_duration_seconds histogram$/m);
    expect(served.has('ltp_reconcile_duration_seconds_bucket')).to.equal(true);
    expect(served.has('ltp_reconcile_duration_seconds_count')).to.equal(true);
    expect(served.has('ltp_reconcile_duration_seconds'), 'a histogram has no series of its bare name').to.equal(false);
    expect(served.has('ltp_leader')).to.equal(true);
    expect(served.has('process_cpu_seconds_total'), "prom-client's default metrics").to.equal(true);
    // The checker flags what is not served, a histogram's bare name included.
    const wrong = parseQuery({ where: 'example', expr: 'rate(ltp_reconcile_duration_seconds[5m]) + ltp_no_such_metric' });
    expect(problems([wrong], served)).to.deep.equal([
      'example: ltp_no_such_metric is not served at /metrics',
      'example: ltp_reconcile_duration_seconds is not served at /metrics',
    ]);
    expect(parseQuery({ where: 'example', expr: 'sum(rate(ltp_leader[5m])' }).errors).to.not.deep.equal([]);
  });

  it('every alert expression parses and uses only metrics the controller serves', () => {
    const queries = alertQueries(objects).map(parseQuery);
    expect(queries.length, 'alert rules').to.equal(10);
    const used = new Set(queries.flatMap((q) => q.metrics));
    for (const name of [
      'ltp_backlog_tasks',
      'ltp_tasks_finished_total',
      'ltp_invocations_orphaned_total',
      'ltp_invocations_dispatched_total',
      'ltp_invocations_wasted_total',
      'ltp_pool_ready',
      'ltp_function_ready',
      'ltp_reconcile_duration_seconds_count',
      'ltp_leader',
    ]) {
      expect(used.has(name), `an alert uses ${name}`).to.equal(true);
    }
    expect(problems(queries, served)).to.deep.equal([]);
  });

  it('every dashboard panel query and variable parses and uses only metrics the controller serves', () => {
    const queries = dashboardQueries(objects).map(parseQuery);
    expect(queries.length, 'dashboard queries').to.be.greaterThan(20);
    const used = new Set(queries.flatMap((q) => q.metrics));
    for (const name of [
      'ltp_backlog_tasks',
      'ltp_invocations',
      'ltp_task_wait_seconds_bucket',
      'ltp_invocation_duration_seconds_bucket',
      'ltp_invocation_gb_seconds_total',
      'ltp_tasks_finished_total',
      'ltp_invoke_errors_total',
      'ltp_reconcile_duration_seconds_bucket',
    ]) {
      expect(used.has(name), `a panel uses ${name}`).to.equal(true);
    }
    expect(problems(queries, served)).to.deep.equal([]);
  });
});
