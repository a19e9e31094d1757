import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's Prometheus metrics (GET /metrics), one registry per service instance. */
export class Metrics {
  readonly registry = new Registry();
  readonly syncs = new Counter({ name: 'popwire_syncs_total', help: 'Sync runs, by how they ended', labelNames: ['status'] as const, registers: [this.registry] });
  readonly messages = new Counter({ name: 'popwire_messages_stored_total', help: 'Messages stored', registers: [this.registry] });
  readonly bytes = new Counter({ name: 'popwire_bytes_stored_total', help: 'Octets of messages stored', registers: [this.registry] });
  readonly deleted = new Counter({ name: 'popwire_messages_deleted_total', help: 'Messages deleted from servers after they were stored', registers: [this.registry] });
  readonly errors = new Counter({
    name: 'popwire_sync_errors_total',
    help: 'Failed or deferred sync runs, by error kind (authentication, connection, timeout, server, protocol, store, ...)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'popwire_sync_duration_seconds',
    help: 'Duration of sync runs',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'popwire_queue_depth', help: 'Sync jobs waiting to run', registers: [this.registry] });
  readonly running = new Gauge({ name: 'popwire_syncs_running', help: 'Sync runs in progress', registers: [this.registry] });
  readonly webhooks = new Counter({ name: 'popwire_webhook_deliveries_total', help: 'Webhook delivery attempts, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'popwire_' });
  }
}
