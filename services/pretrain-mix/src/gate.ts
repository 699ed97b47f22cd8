import { ResourceExhaustedError } from "@rlhf/errors";

/**
 * Admission of PtxGradients calls: at most `capacity` + 1 in progress (pulling weights, waiting
 * for the compute queue, computing or streaming their gradients out), so a burst is refused with
 * RESOURCE_EXHAUSTED at once, before any pull, and the gradient sets held in memory stay bounded.
 * The compute itself runs on a SerialQueue with room for every admitted call, so it never refuses.
 */
export class CallGate {
  private inFlight = 0;

  constructor(
    readonly name: string,
    /** Calls allowed to wait behind the running one. */
    readonly capacity: number,
  ) {}

  /** Calls in progress now. */
  get depth(): number {
    return this.inFlight;
  }

  /** Admits a call (or throws RESOURCE_EXHAUSTED); call the returned function once when it ends. */
  enter(): () => void {
    if (this.inFlight > this.capacity) throw new ResourceExhaustedError(`${this.name} queue is full (${this.capacity} waiting); retry later`);
    this.inFlight++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.inFlight--;
    };
  }
}
