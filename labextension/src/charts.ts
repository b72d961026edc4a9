/**
 * Metric charts with plotly.js, loaded on first use so the sidebar's first render stays light.
 * Colors come from JupyterLab's theme variables, so charts follow the light and dark themes.
 */
import type { IMetricPoint, MetricValue } from './api';
import { h } from './dom';

type PlotlyModule = typeof import('plotly.js-basic-dist-min').default;
let plotly: Promise<PlotlyModule> | null = null;

function loadPlotly(): Promise<PlotlyModule> {
  if (!plotly) {
    plotly = import('plotly.js-basic-dist-min').then(module => module.default);
  }
  return plotly;
}

/** One line of a chart: a name and its points. */
export interface ISeries {
  name: string;
  points: IMetricPoint[];
}

function cssVar(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

/** Plotly reads a few HTML-like tags in labels: escape them so a name shows as typed. */
export function plotlyText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function numeric(value: MetricValue): number | null {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'inf') {
    return Infinity;
  }
  if (value === '-inf') {
    return -Infinity;
  }
  return null; // NaN: a gap in the line
}

/**
 * A series' steps and values, with a gap wherever the step goes back (a training cell run
 * again logs its series from step 0 once more): each pass is drawn as a line of its own.
 */
export function segmented(points: IMetricPoint[]): [Array<number | null>, Array<number | null>] {
  const x: Array<number | null> = [];
  const y: Array<number | null> = [];
  let previous = -Infinity;
  for (const point of points) {
    if (point.step <= previous) {
      x.push(null);
      y.push(null);
    }
    x.push(point.step);
    y.push(numeric(point.value));
    previous = point.step;
  }
  return [x, y];
}

/** A chart element for one metric; plotly draws into it once loaded. */
export function metricChart(title: string, series: ISeries[]): HTMLElement {
  const element = h('div', {
    className: 'jp-mlops-chart',
    role: 'img',
    'aria-label': `chart of ${title}`
  });
  void drawChart(element, title, series);
  return element;
}

async function drawChart(element: HTMLElement, title: string, series: ISeries[]): Promise<void> {
  const Plotly = await loadPlotly();
  const font = cssVar('--jp-ui-font-color1', '#333');
  const grid = cssVar('--jp-border-color2', '#ddd');
  const data = series.map(line => {
    const [x, y] = segmented(line.points);
    return {
      type: 'scatter',
      mode: line.points.length > 1 ? 'lines' : 'markers',
      name: plotlyText(line.name),
      x,
      y,
      connectgaps: false
    };
  });
  const legend = series.length > 1;
  const layout = {
    title: { text: plotlyText(title), font: { size: 13 } },
    height: 240,
    // The legend sits above the plot, clear of the step axis's title.
    margin: { l: 50, r: 10, t: legend ? 60 : 36, b: 40 },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { color: font, family: cssVar('--jp-ui-font-family', 'sans-serif') },
    xaxis: { title: { text: 'step' }, gridcolor: grid, zerolinecolor: grid },
    yaxis: { gridcolor: grid, zerolinecolor: grid },
    showlegend: legend,
    legend: { orientation: 'h', x: 0, xanchor: 'left', y: 1.02, yanchor: 'bottom' }
  };
  await Plotly.newPlot(element, data, layout, { displaylogo: false, responsive: true });
}

/** Release a chart's resources. */
export function purgeCharts(root: HTMLElement): void {
  if (!plotly) {
    return;
  }
  void plotly.then(Plotly => {
    root.querySelectorAll('.jp-mlops-chart').forEach(node => Plotly.purge(node as HTMLElement));
  });
}
