/**
 * The one test clock. Everything is in MILLISECONDS. Tests hand `clock.now` to whatever reads
 * the time and `clock.timers` to whatever sleeps (KeyScheduler), then move time instead of
 * sleeping.
 *
 * Two modes: a stopped clock (the default) stands still between moves, so a test can assert
 * exact instants; a running clock follows the real one plus what the test added, for tests that
 * also verify tokens with libraries reading the real time (jose checks `exp` against Date.now()).
 */
export class TestClock {
  #stoppedAt: number | undefined;
  #offset = 0;
  #timers: { at: number; seq: number; callback: () => void }[] = [];
  #seq = 0;
  #armWaiters: (() => void)[] = [];

  /** A stopped clock at `at` (default: the real time now). */
  constructor(at: Date | number = Date.now()) {
    this.#stoppedAt = typeof at === 'number' ? at : at.getTime();
  }

  /** A clock that follows the real time until the test moves or stops it. */
  static running(): TestClock {
    const clock = new TestClock();
    clock.#stoppedAt = undefined;
    return clock;
  }

  readonly now = (): Date => new Date(this.ms);

  get ms(): number {
    return this.#stoppedAt ?? Date.now() + this.#offset;
  }

  /** Moves time by `ms` (negative moves back), then fires the timers that fell due. */
  advance(ms: number): void {
    if (this.#stoppedAt === undefined) this.#offset += ms;
    else this.#stoppedAt += ms;
    this.#fireDue();
  }

  /** Moves time to `at`, then fires the timers that fell due. */
  set(at: Date | number): void {
    const target = typeof at === 'number' ? at : at.getTime();
    if (this.#stoppedAt === undefined) this.#offset = target - Date.now();
    else this.#stoppedAt = target;
    this.#fireDue();
  }

  /** Stops the clock where it is (a running clock stands still from now on). */
  stop(): void {
    this.#stoppedAt = this.ms;
  }

  /** Lets a stopped clock run on from where it stands. */
  resume(): void {
    if (this.#stoppedAt === undefined) return;
    this.#offset = this.#stoppedAt - Date.now();
    this.#stoppedAt = undefined;
  }

  /**
   * Timers on this clock: a callback fires when advance() or set() reaches its due time, never
   * on its own. Meant for a stopped clock (on a running one they still wait for a move).
   */
  readonly timers = {
    schedule: (callback: () => void, delayMs: number): (() => void) => {
      const timer = { at: this.ms + Math.max(0, delayMs), seq: this.#seq++, callback };
      this.#timers.push(timer);
      for (const wake of this.#armWaiters.splice(0)) wake();
      return () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
      };
    },
  };

  /** Due times (ms) of the timers not yet fired, earliest first. */
  pendingTimers(): number[] {
    return this.#timers.map((t) => t.at).sort((a, b) => a - b);
  }

  /** Resolves when the next timer is scheduled (e.g. the scheduler re-arming after a check). */
  nextSchedule(): Promise<void> {
    return new Promise((resolve) => this.#armWaiters.push(resolve));
  }

  #fireDue(): void {
    const now = this.ms;
    // Only those due now: timers their callbacks schedule wait for the next move.
    const due = this.#timers.filter((t) => t.at <= now).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.#timers = this.#timers.filter((t) => t.at > now);
    for (const timer of due) timer.callback();
  }
}
