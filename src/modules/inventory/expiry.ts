import type { Logger } from '../../platform/logging.js';
import type { InventoryService } from './service.js';

/**
 * Gives lapsed reservations' units back to stock. Runs in every hub process: each expiry
 * locks and re-checks its reservation, so processes never expire one twice and a commit that
 * races an expiry is decided by whichever locks first.
 */
export class ReservationExpiry {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly inventory: InventoryService,
    private readonly options: { intervalMs?: number; logger?: Logger } = {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => (this.running = null));
    }, this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Expires everything due now, in batches. */
  async runOnce(now = Date.now()): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const expired = await this.inventory.expireDue(now, 500);
        total += expired;
        if (expired < 500) break;
      }
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'reservation expiry failed; will retry');
    }
    return total;
  }
}
