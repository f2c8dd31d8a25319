/**
 * Whether a shortcut is worth trying on the next item: a moving average (0..1) of how much it
 * paid off lately. At or above `threshold` it is tried every time; below, every `every`-th time
 * only, so a run of items where it pays again is noticed within a few. Used by the restore and
 * verify walks (a directory's names read first in missing mode; a directory skipped by its
 * stat digest), where a damaged tree would otherwise pay for a shortcut that never works.
 */
export class ShortcutProbe {
  private share = 1;
  private since = 0;

  constructor(
    private readonly threshold: number,
    private readonly every = 16,
  ) {}

  /** The shortcut paid off lately (at or above the threshold). */
  get likely(): boolean {
    return this.share >= this.threshold;
  }

  worth(): boolean {
    if (this.likely || ++this.since >= this.every) {
      this.since = 0;
      return true;
    }
    return false;
  }

  /** How much the last try paid off (0..1, or whether it did). */
  saw(paidOff: number | boolean): void {
    this.share = 0.75 * this.share + 0.25 * Number(paidOff);
  }
}
