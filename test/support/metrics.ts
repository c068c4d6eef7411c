/**
 * One GET /metrics of a running app, read as series values: `name{labels}`
 * exactly as exposed (or a bare name), 0 when the series is absent. One
 * scrape serves several reads, so values compared with each other come from
 * the same instant.
 */
export async function scrapeMetrics(url: string): Promise<(series: string) => number> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  const lines = (await res.text()).split('\n');
  return (series) => {
    const line = lines.find((l) => l.startsWith(`${series} `) || l.startsWith(`${series}{`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
}
