/**
 * The client of the jupyter-mlops REST API (see jupyter_mlops/server/openapi.yaml).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IRunsQuery, queryString, runsQuery } from './query';

/** A metric value as the API sends it: a number, or "nan" / "inf" / "-inf". */
export type MetricValue = number | string;

/** One run as listed. */
export interface IRun {
  id: string;
  name: string;
  status: string;
  kind: string;
  notebook: string | null;
  lab_path: string | null;
  start_time: number;
  end_time: number | null;
  linear: boolean | null;
  linear_reasons: string[] | null;
  parent_id: string | null;
  note: string | null;
  error: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, MetricValue>;
  tags: Record<string, string>;
  metric_keys?: string[];
  /** In lists: how often the run was replayed, and its latest replay. */
  replay_summary?: {
    count: number;
    verdict: string | null;
    state: string | null;
    run_id: string | null;
  };
}

/** A point of a metric's step series. */
export interface IMetricPoint {
  step: number;
  value: MetricValue;
  time: number;
  cell: number | null;
}

/** One executed cell, in run order. */
export interface ICell {
  seq: number;
  execution_count: number | null;
  cell_id: string | null;
  source: string | null;
  duration: number | null;
  error: string | null;
  error_value: string | null;
  reads: string[] | null;
  writes: string[] | null;
  /** How the cell broke top-to-bottom order ("ran again", "out of order: …"), from the server. */
  marks?: string[];
}

/** A replay of a run: progress, then the verdict. */
export interface IReplay {
  id: string;
  original_id: string;
  replay_run_id: string | null;
  mode: string;
  state: string;
  cells_done: number | null;
  cells_total: number | null;
  verdict: string | null;
  summary: string | null;
  start_time: number;
  end_time: number | null;
}

/** A problem a data check found in one column. */
export interface IDataProblem {
  column: string;
  kind: string;
  detail: string;
  severity: string;
}

/** A check of new data against a recorded dataset, made in a run or against its data. */
export interface IDataCheck {
  id: string;
  run_id: string | null;
  time: number;
  subject: string;
  baseline_run: string | null;
  baseline_dataset: string | null;
  passed: boolean;
  report: { problems?: IDataProblem[] } | null;
}

/** A run whole. */
export interface IRunDetail extends IRun {
  metric_series: Record<string, IMetricPoint[]>;
  metric_series_length: Record<string, number>;
  cells: ICell[];
  datasets: Array<Record<string, unknown>>;
  data_checks?: IDataCheck[];
  artifacts: Array<Record<string, unknown>>;
  environment: Record<string, unknown> | null;
  replays: IReplay[];
  replay_of: IReplay | null;
  /** The model versions registered from this run. */
  registered?: Array<{
    name: string;
    version: number;
    aliases: string[];
    artifact: string;
    verdict: string | null;
  }>;
}

/** A page of runs. */
export interface IRunsPage {
  runs: IRun[];
  total: number;
  total_capped: boolean;
  limit: number;
  offset: number;
  store: string | null;
}

/** The diff of two runs (as `jupyter mlops diff --format json`). */
export interface IDiff {
  a: { id: string; name: string };
  b: { id: string; name: string };
  same: boolean;
  params: Record<string, [unknown, unknown]>;
  metrics: Record<
    string,
    { a: MetricValue | null; b: MetricValue | null; delta: MetricValue | null }
  >;
  datasets: Record<string, [string | null, string | null]>;
  packages: Record<string, [string | null, string | null]>;
  cells: { count: [number, number]; differences: unknown[] };
}

/** Runs side by side. */
export interface ICompare {
  runs: IRun[];
  diffs: IDiff[];
}

/** What a person can change on a run. */
export interface IRunChange {
  name?: string;
  tags?: Record<string, string>;
  remove_tags?: string[];
  note?: string;
}

/** An error the API answered with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message);
  }
}

const settings = ServerConnection.makeSettings();

function apiUrl(...parts: string[]): string {
  return URLExt.join(settings.baseUrl, 'jupyter-mlops', 'api', ...parts);
}

async function send(url: string, init: RequestInit): Promise<Response> {
  try {
    return await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(0, 'network', String(error));
  }
}

/** The API's error body, `{"error": code, "message": text}`, or null if the body is not that. */
function errorBody(text: string): { error?: string; message?: string } | null {
  try {
    const data: unknown = text ? JSON.parse(text) : null;
    return data && typeof data === 'object' ? (data as { error?: string; message?: string }) : null;
  } catch {
    return null;
  }
}

function failure(response: Response, text: string): ApiError {
  const data = errorBody(text);
  return new ApiError(
    response.status,
    data?.error || `http_${response.status}`,
    data?.message || response.statusText
  );
}

/** Call the API; JSON in, JSON out, errors as ApiError with the server's one-line message. */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  query: Record<string, string | undefined> = {}
): Promise<T> {
  const search = queryString(query);
  const response = await send(apiUrl(path) + (search ? `?${search}` : ''), init);
  const text = await response.text();
  if (!response.ok) {
    throw failure(response, text);
  }
  try {
    return (text ? JSON.parse(text) : null) as T;
  } catch {
    return null as T;
  }
}

/** The API's calls, one function each. */
export const api = {
  runs(query: IRunsQuery): Promise<IRunsPage> {
    return requestAPI<IRunsPage>('runs', {}, runsQuery(query));
  },
  run(id: string): Promise<IRunDetail> {
    return requestAPI<IRunDetail>(`runs/${encodeURIComponent(id)}`);
  },
  metric(
    id: string,
    key: string,
    maxPoints = 1000
  ): Promise<{ points: IMetricPoint[]; length: number }> {
    return requestAPI(
      `runs/${encodeURIComponent(id)}/metrics/${encodeURIComponent(key)}`,
      {},
      { max_points: String(maxPoints) }
    );
  },
  compare(ids: string[]): Promise<ICompare> {
    return requestAPI<ICompare>('compare', {}, { ids: ids.join(',') });
  },
  update(id: string, body: IRunChange): Promise<IRun> {
    return requestAPI<IRun>(`runs/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      body: JSON.stringify(body)
    });
  },
  remove(id: string): Promise<{ deleted: string }> {
    return requestAPI(`runs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  },
  startReplay(id: string, body: { mode?: string } = {}): Promise<IReplay> {
    return requestAPI<IReplay>(`runs/${encodeURIComponent(id)}/replay`, {
      method: 'POST',
      body: JSON.stringify(body)
    });
  },
  replay(id: string): Promise<IReplay> {
    return requestAPI<IReplay>(`replays/${encodeURIComponent(id)}`);
  },
  /** An artifact's stored bytes, fetched with the page's credentials. */
  async artifact(id: string, name: string): Promise<Blob> {
    const url = apiUrl('runs', encodeURIComponent(id), 'artifacts', encodeURIComponent(name));
    const response = await send(url, {});
    if (!response.ok) {
      throw failure(response, await response.text());
    }
    return response.blob();
  }
};
