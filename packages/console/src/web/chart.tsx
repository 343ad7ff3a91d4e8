import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartConfiguration } from "chart.js";
import { useEffect, useRef } from "preact/hooks";

// Only what bar charts need: Chart.js tree-shakes the rest out of the bundle.
Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue("--font").trim() || "system-ui, sans-serif";
Chart.defaults.font.size = 13;
Chart.defaults.color = "#1f2933";

export interface BarSeries {
  label: string;
  values: number[];
  color: string | string[];
}

/**
 * A horizontal bar chart (labels stay readable however long a model name is). No animation: what a
 * screenshot or a person sees is the final picture at once.
 */
export function BarChart(props: {
  title: string;
  labels: string[];
  series: BarSeries[];
  stacked?: boolean;
  format: (v: number) => string;
  testid: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const figure = useRef<HTMLElement>(null);
  const { labels, series, stacked, format } = props;
  useEffect(() => {
    if (!canvas.current) return;
    const config: ChartConfiguration<"bar", number[], string> = {
      type: "bar",
      data: {
        labels,
        datasets: series.map((s) => ({ label: s.label, data: s.values, backgroundColor: s.color, borderRadius: 3, maxBarThickness: 28 })),
      },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: series.length > 1, position: "bottom" },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label ?? ""}: ${format(Number(item.raw))}` } },
        },
        scales: {
          x: { stacked: stacked ?? false, beginAtZero: true, ticks: { callback: (v) => format(Number(v)), maxTicksLimit: 6 } },
          y: { stacked: stacked ?? false, ticks: { autoSkip: false } },
        },
      },
    };
    const chart = new Chart(canvas.current, config);
    // Drawn (no animation): say so, for whoever waits for the picture (a test, a screenshot).
    figure.current?.setAttribute("data-drawn", "true");
    return () => {
      figure.current?.removeAttribute("data-drawn");
      chart.destroy();
    };
  }, [labels, series, stacked, format]);

  const height = Math.max(140, labels.length * (series.length > 1 && !stacked ? 46 : 34) + (series.length > 1 ? 70 : 40));
  return (
    <figure class="chart" data-testid={props.testid} data-points={labels.length} ref={figure}>
      <figcaption>{props.title}</figcaption>
      <div class="chart-box" style={{ height: `${height}px` }}>
        <canvas ref={canvas} role="img" aria-label={props.title} />
      </div>
    </figure>
  );
}
