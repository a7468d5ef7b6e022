import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The hub's Prometheus registry: one per hub instance, so tests can run several hubs. */
export class HubMetrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'nexus_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'nexus_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  /** Business-duplicate decisions (modules/dedup): first, drop, merge, flag, unkeyed. */
  readonly dedupDecisions = new Counter({
    name: 'nexus_dedup_decisions_total',
    help: 'Deduplication decisions on ingested events by rule, action and source system',
    labelNames: ['rule', 'action', 'source'] as const,
    registers: [this.registry],
  });
  /** Webhook attempts by outcome (the webhooks module's dispatcher counts them here). */
  readonly webhookDeliveries = new Counter({
    name: 'nexus_webhook_deliveries_total',
    help: 'Webhook attempts by outcome: succeeded; failed (a retry is scheduled); dead (given up)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  /** Reservation queue batches by path (modules/inventory, D31). */
  readonly reservationBatches = new Counter({
    name: 'nexus_inventory_reservation_batches_total',
    help: 'Reservation batches by path: snapshot (one guarded statement), lock (locking transaction), stale (a snapshot had changed; the batch took the lock)',
    labelNames: ['path'] as const,
    registers: [this.registry],
  });

  /** Personal values tokenized (modules/tokenization), by token kind and field class. */
  readonly tokenizedValues = new Counter({
    name: 'nexus_tokenization_values_total',
    help: 'Personal values turned into tokens (at the edge or on request) by token kind and field class, counted once the call or ingest that issued them succeeded (a value issued again after meeting an erased token counts once)',
    labelNames: ['kind', 'field_class'] as const,
    registers: [this.registry],
  });
  /** Audited tokenization calls: detokenize, erasure, key rotation, re-encryption, refusals. */
  readonly tokenizationAudit = new Counter({
    name: 'nexus_tokenization_audited_total',
    help: 'Audited tokenization calls by action, outcome (ok or refused) and code',
    labelNames: ['action', 'outcome', 'code'] as const,
    registers: [this.registry],
  });

  constructor(probes: {
    outboxBacklog: () => Promise<number>;
    eventsPublished: () => number;
    relayLeader: () => boolean;
  }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'nexus_' });
    new Gauge({
      name: 'nexus_outbox_backlog',
      help: 'Committed events not yet on the bus',
      registers: [this.registry],
      async collect() {
        this.set(await probes.outboxBacklog().catch(() => -1));
      },
    });
    new Gauge({
      name: 'nexus_outbox_published_total',
      help: 'Events this process put on the bus since start (relayed, or appended at commit)',
      registers: [this.registry],
      collect() {
        this.set(probes.eventsPublished());
      },
    });
    new Gauge({
      name: 'nexus_outbox_relay_leader',
      help: '1 when this process is the active outbox relay',
      registers: [this.registry],
      collect() {
        this.set(probes.relayLeader() ? 1 : 0);
      },
    });
  }
}
