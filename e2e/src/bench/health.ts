/** Health checks of a running session's services, for the health benchmark and the fault-injection suite. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkHealth } from "@rlhf/grpc-kit";

export const SERVICES = ["policy", "reward-model", "reference-model", "pretrain-mix", "ppo-coordinator"];

/** The address a service of `<runs dir>` listens on: the last "listening" line of its log. */
export function addressOf(runsDir: string, service: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(runsDir, `${service}.log`), "utf8");
  } catch {
    return undefined;
  }
  let address: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.includes('"listening"')) continue;
    try {
      address = (JSON.parse(line) as { address?: string }).address ?? address;
    } catch {
      // a torn last line
    }
  }
  return address;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The p-quantile of `xs` (NaN for none). */
export const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;

/** Checks health every `intervalMs` until `until` (or three failures in a row); the answer times in ms. */
export async function poll(address: string, until: number | (() => boolean), intervalMs: number): Promise<number[]> {
  const going = () => (typeof until === "number" ? Date.now() < until : !until());
  const ms: number[] = [];
  let failures = 0;
  while (going() && failures < 3) {
    const t0 = process.hrtime.bigint();
    try {
      await checkHealth(address, "", 30_000);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      failures = 0;
    } catch {
      failures++; // the service has gone (or never answered): three in a row end the poll
    }
    await sleep(intervalMs);
  }
  return ms;
}

