/**
 * The "header first" protocol of client streams (Sft, reward-model Train, PpoUpdate): a stream of
 * messages whose `part` oneof carries the header (a config, a minibatch) exactly once, first, and
 * then body parts (examples, comparisons, gradient chunks). One reader, one set of error lines.
 */
import { InvalidArgumentError } from "@rlhf/errors";

type Part = { $case: string };

/** `validationExamples` -> `validation_examples` (proto field names in error messages). */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Options of {@link readHeaderFirst}. */
export interface HeaderFirstOptions<P extends Part, K extends P["$case"], H> {
  /** The header's case (`config`, `minibatch`). */
  header: K;
  /** The part names a message may set, for the error when it sets none ("config, examples, ..."). */
  cases: string;
  /** The error when the stream held no header. Default "the first message must be the <header>". */
  missing?: string;
  /** Validates the header; what it returns goes to every body part and is returned at the end. */
  onHeader(part: Extract<P, { $case: K }>, field: string): H;
  /** Takes one body part (validate, buffer); `field` is `requests[i]`. */
  onPart(part: Exclude<P, { $case: K }>, field: string, header: H): void | Promise<void>;
}

/** Reads the whole stream under the protocol; returns what `onHeader` returned. */
export async function readHeaderFirst<P extends Part, K extends P["$case"], H>(reqs: AsyncIterable<{ part?: P }>, o: HeaderFirstOptions<P, K, H>): Promise<H> {
  let header: { value: H } | undefined;
  let i = 0;
  for await (const req of reqs) {
    const field = `requests[${i}]`;
    const part = req.part;
    if (!part) throw new InvalidArgumentError(`${field}.part`, `set one of ${o.cases}`);
    if (part.$case === o.header) {
      if (i !== 0) throw new InvalidArgumentError(`${field}.${snake(o.header)}`, `the ${snake(o.header)} must be sent exactly once, first`);
      header = { value: o.onHeader(part as Extract<P, { $case: K }>, field) };
    } else {
      if (!header) throw new InvalidArgumentError(`${field}.${snake(part.$case)}`, `the first message must be the ${snake(o.header)}`);
      await o.onPart(part as Exclude<P, { $case: K }>, field, header.value);
    }
    i++;
  }
  if (!header) throw new InvalidArgumentError(snake(o.header), o.missing ?? `the first message must be the ${snake(o.header)}`);
  return header.value;
}
