/** What the intake reports to the metrics registry (kept as an interface so routes don't import prom-client). */
export interface IntakeMetrics {
  notification(format: string, outcome: string, accepted?: number, duplicates?: number): void;
}
