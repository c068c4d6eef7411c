/**
 * A dispatcher's pause between fetches that others can end early: the
 * replication and scan workers sleep for their poll interval unless a wake-up
 * (a notification, a freed slot, shutdown) interrupts them.
 */
export class InterruptibleSleep {
  #end: (() => void) | undefined;

  /** Resolve after `ms`, or at once when interrupted. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#end === done) this.#end = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#end = done;
    });
  }

  /** End the current sleep; a no-op when nobody sleeps. */
  interrupt(): void {
    const end = this.#end;
    this.#end = undefined;
    end?.();
  }
}
