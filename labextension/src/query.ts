/**
 * Query strings of the API's calls, built from typed options. Pure functions, no DOM.
 */

/** What a page of runs is asked with. */
export interface IRunsQuery {
  notebook?: string;
  where?: string;
  status?: string;
  limit?: number;
  offset?: number;
  replays?: boolean;
}

/** A query string ("a=1&b=x"), leaving out values that are undefined or empty. */
export function queryString(query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') {
      params.set(key, value);
    }
  }
  return params.toString();
}

/** The query of a page of runs, as the API spells it. */
export function runsQuery(query: IRunsQuery): Record<string, string | undefined> {
  return {
    notebook: query.notebook,
    where: query.where,
    status: query.status,
    replays: query.replays === undefined ? undefined : query.replays ? '1' : '0',
    limit: query.limit !== undefined ? String(query.limit) : undefined,
    offset: query.offset !== undefined ? String(query.offset) : undefined
  };
}
