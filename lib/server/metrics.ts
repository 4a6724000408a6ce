// Metrics for GET /metrics in Prometheus' text format (version 0.0.4): a tiny registry of counters, gauges and
// histograms, and ServerMetrics — the engine's observer plus HTTP request counts, named after vLLM's metrics
// (`vllm:` → `layerskip:`) so existing dashboards need only the prefix changed.
import type { EngineFinishReason, EngineObserver, EngineResult, EngineState } from './engine-api.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string>;

/** `{a="x",b="y"}` with keys sorted, values escaped; '' for no labels. Also the key of a labelled series. */
function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const escape = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `{${keys.map((key) => `${key}="${escape(labels[key])}"`).join(',')}}`;
}

function formatNumber(value: number): string {
  if (Number.isFinite(value)) return String(value);
  return Number.isNaN(value) ? 'NaN' : value > 0 ? '+Inf' : '-Inf';
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}

  /** The sample lines (no HELP / TYPE). */
  abstract samples(): string[];

  render(): string {
    const help = this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
    return [`# HELP ${this.name} ${help}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()].join('\n');
  }
}

/** Values by label set; the unlabelled series exists from the start (it reads 0 before the first change). */
class LabelledValues extends Metric {
  protected readonly values = new Map<string, number>();

  constructor(name: string, help: string, type: 'counter' | 'gauge', labelled: boolean) {
    super(name, help, type);
    if (!labelled) this.values.set('', 0);
  }

  get(labels: Labels = {}): number {
    return this.values.get(formatLabels(labels)) ?? 0;
  }

  samples(): string[] {
    return [...this.values].map(([labels, value]) => `${this.name}${labels} ${formatNumber(value)}`);
  }
}

export class Counter extends LabelledValues {
  /** Adds `value` (≥ 0; 0 creates the series so it is scraped before its first event). */
  inc(value = 1, labels: Labels = {}): void {
    if (!(value >= 0)) throw new RangeError(`${this.name}: a counter only goes up, got ${value}`);
    const key = formatLabels(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + value);
  }
}

export class Gauge extends LabelledValues {
  set(value: number, labels: Labels = {}): void {
    this.values.set(formatLabels(labels), value);
  }
}

/** Cumulative buckets (`_bucket{le=...}`, +Inf included), `_sum` and `_count`; unlabelled. */
export class Histogram extends Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram');
    this.counts = new Array(buckets.length).fill(0);
  }

  observe(value: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  samples(): string[] {
    return [
      ...this.buckets.map((bound, i) => `${this.name}_bucket{le="${formatNumber(bound)}"} ${this.counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${formatNumber(this.sum)}`,
      `${this.name}_count ${this.count}`,
    ];
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string, { labelled = false } = {}): Counter {
    return this.add(new Counter(name, help, 'counter', labelled));
  }

  gauge(name: string, help: string, { labelled = false } = {}): Gauge {
    return this.add(new Gauge(name, help, 'gauge', labelled));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  /** Every metric in registration order, in the text exposition format. */
  render(): string {
    return [...this.metrics.values()].map((metric) => metric.render()).join('\n') + '\n';
  }

  private add<T extends Metric>(metric: T): T {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

// Bucket bounds in seconds (vLLM's, with finer low ends: a small model on a GPU decodes a token in ~1 ms).
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const E2E_BUCKETS = [0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920];
const STEP_ROW_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
const FINISH_REASONS: EngineFinishReason[] = ['stop', 'length', 'abort', 'timeout', 'context_full'];

/** The server's metrics: the engine reports into it (EngineObserver), the HTTP layer counts requests. */
export class ServerMetrics implements EngineObserver {
  readonly registry = new MetricsRegistry();
  private readonly running = this.registry.gauge('layerskip:num_requests_running', 'Requests decoding in a slot.');
  private readonly waiting = this.registry.gauge('layerskip:num_requests_waiting', 'Requests queued for a free slot.');
  private readonly kvCacheUsage = this.registry.gauge('layerskip:kv_cache_usage_perc', 'KV cache positions in use, over all slots (1 = full).');
  private readonly promptTokens = this.registry.counter('layerskip:prompt_tokens_total', 'Prompt tokens of finished requests.');
  private readonly generationTokens = this.registry.counter('layerskip:generation_tokens_total', 'Tokens generated by finished requests.');
  private readonly requestSuccess = this.registry.counter('layerskip:request_success_total', 'Finished requests by engine finish reason.', {
    labelled: true,
  });
  private readonly timeToFirstToken = this.registry.histogram('layerskip:time_to_first_token_seconds', 'Time from admission to the first token.', TTFT_BUCKETS);
  private readonly interTokenLatency = this.registry.histogram('layerskip:inter_token_latency_seconds', 'Time between consecutive tokens of a request.', ITL_BUCKETS);
  private readonly e2eLatency = this.registry.histogram('layerskip:e2e_request_latency_seconds', 'Time from submission to the last token (queue included).', E2E_BUCKETS);
  private readonly queueTime = this.registry.histogram('layerskip:request_queue_time_seconds', 'Time a request waited for a slot.', E2E_BUCKETS);
  private readonly stepRows = this.registry.histogram('layerskip:iteration_tokens_total', 'Token rows per engine step, over all sequences.', STEP_ROW_BUCKETS);
  private readonly specDrafts = this.registry.counter('layerskip:spec_decode_num_drafts_total', 'Self-speculative draft-and-verify steps.');
  private readonly specDraftTokens = this.registry.counter('layerskip:spec_decode_num_draft_tokens_total', 'Tokens drafted by the early-exit layers.');
  private readonly specAcceptedTokens = this.registry.counter('layerskip:spec_decode_num_accepted_tokens_total', 'Drafted tokens the full model accepted.');
  private readonly httpRequests = this.registry.counter('layerskip:http_requests_total', 'HTTP requests answered, by endpoint and status.', {
    labelled: true,
  });

  constructor() {
    for (const reason of FINISH_REASONS) this.requestSuccess.inc(0, { finished_reason: reason });
  }

  // Observer hooks are arrow properties so that the engine may call them detached.
  readonly onStep = (step: { rows: number; sequences: number; ms: number }): void => this.stepRows.observe(step.rows);
  readonly onFirstToken = (ms: number): void => this.timeToFirstToken.observe(ms / 1000);
  readonly onToken = (interTokenMs: number): void => this.interTokenLatency.observe(interTokenMs / 1000);

  /** One draft-and-verify step: `drafted` proposals of which `accepted` survived. */
  readonly onSpeculation = (drafted: number, accepted: number): void => {
    this.specDrafts.inc();
    this.specDraftTokens.inc(drafted);
    this.specAcceptedTokens.inc(accepted);
  };

  readonly onFinish = (result: EngineResult): void => {
    const timings = result.timings;
    this.promptTokens.inc(result.promptTokens);
    this.generationTokens.inc(result.tokenIds.length);
    this.requestSuccess.inc(1, { finished_reason: result.finishReason });
    this.e2eLatency.observe((timings.queuedMs + timings.promptMs + timings.predictedMs) / 1000);
    this.queueTime.observe(timings.queuedMs / 1000);
  };

  /** One answered HTTP request; `endpoint` is a route ("/v1/completions") or "other", never a raw URL. */
  recordHttpRequest(endpoint: string, status: number): void {
    this.httpRequests.inc(1, { endpoint, status: String(status) });
  }

  /** The exposition text, with the gauges read from the engine's state at this scrape. */
  render(state?: EngineState): string {
    if (state) {
      this.running.set(state.running);
      this.waiting.set(state.queued);
      this.kvCacheUsage.set(state.kvCacheTotalPositions > 0 ? state.kvCacheUsedPositions / state.kvCacheTotalPositions : 0);
    }
    return this.registry.render();
  }
}
