/**
 * `rlhf demo`: the main job. For now (before the training services exist) it shows the
 * foundation end to end: writes a seeded GPT-2 checkpoint folder (Hugging Face layout), starts
 * the reference-model service as a child process on a free loopback port, waits for
 * grpc.health.v1 SERVING, queries per-token log-probabilities through the generated client,
 * shows how bad input is answered, and stops the service with SIGTERM (graceful drain).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { referenceModel } from "@rlhf/proto";
import { createClient, freePort, waitForServing } from "@rlhf/grpc-kit";
import { gpt2InitTensors, presetConfig, toHfConfig, writeSafetensorsFile } from "@rlhf/model";
import { type ParsedArgs, allowFlags, flagString, UsageError } from "../args";

export const DEMO_USAGE = `rlhf demo [--preset tiny|small|gpt2-124m] [--seed N] [--out DIR]
  Writes a seeded checkpoint to DIR (default runs/demo-<time>), serves it with the
  reference-model service on a free loopback port, queries it over gRPC and stops it.`;

const PROMPTS = [
  "The jury said it did find that the city's election was conducted.",
  "List the nouns: The dog ran home.",
  "Hello",
];

function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null) return res(child.exitCode);
    const t = setTimeout(() => {
      child.kill("SIGKILL");
      res(null);
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(t);
      res(code);
    });
  });
}

export async function demo(args: ParsedArgs): Promise<void> {
  allowFlags(args, ["preset", "seed", "out"], "rlhf demo");
  const preset = flagString(args, "preset") ?? "tiny";
  const seedRaw = flagString(args, "seed") ?? "0";
  if (!/^\d+$/.test(seedRaw)) throw new UsageError(`--seed must be a non-negative integer, got "${seedRaw}"`);
  const seed = Number(seedRaw);
  const out = resolve(flagString(args, "out") ?? join("runs", `demo-${new Date().toISOString().replace(/[:.]/g, "-")}`));
  const config = presetConfig(preset);

  // 1. A checkpoint folder as the Hugging Face hub stores GPT-2: config.json + model.safetensors.
  const ckpt = join(out, "base-model");
  mkdirSync(ckpt, { recursive: true });
  writeFileSync(join(ckpt, "config.json"), JSON.stringify(toHfConfig(config), null, 2) + "\n");
  await writeSafetensorsFile(join(ckpt, "model.safetensors"), gpt2InitTensors(config, seed), { format: "pt" });
  console.log(`[1/4] wrote a seeded ${preset} GPT-2 checkpoint (seed ${seed}) to ${ckpt}`);

  // 2. The service as its own process, logs to a file in the run folder.
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const logFile = join(out, "reference-model.log");
  const { openSync } = await import("node:fs");
  const fd = openSync(logFile, "a");
  const child = spawn(process.execPath, [require.resolve("../main"), "serve", "reference-model", "--port", String(port), "--checkpoint", ckpt], {
    stdio: ["ignore", fd, fd],
    env: process.env,
  });
  const stopChild = () => child.kill("SIGTERM");
  process.once("SIGINT", stopChild);
  try {
    const t0 = Date.now();
    await waitForServing(address, 60_000);
    console.log(`[2/4] reference-model is SERVING on ${address} after ${Date.now() - t0} ms (logs: ${logFile})`);

    // 3. Query it through the generated client.
    const client = createClient(referenceModel.ReferenceModelServiceClient, address, { deadlineMs: 60_000, idempotent: ["logProbs", "getInfo"] });
    const info = await client.unary("getInfo", {});
    console.log(`      backend=${info.backend} vocab=${info.config?.vocabSize} context=${info.config?.nPositions} layers=${info.config?.nLayer} weights=${info.weights?.source}`);
    // Byte-level ids (UTF-8 bytes) until the tokenizer issue lands; they fit any vocabulary >= 256.
    const seqs = PROMPTS.map((p) => [...Buffer.from(p, "utf8")].slice(0, config.nPositions));
    const t1 = Date.now();
    const res = await client.unary("logProbs", { batch: { tokens: seqs.flat(), lengths: seqs.map((s) => s.length), promptLengths: [] }, temperature: 1 });
    const ms = Date.now() - t1;
    console.log(`[3/4] LogProbs of ${seqs.length} sequences (${seqs.flat().length} tokens) in ${ms} ms:`);
    let o = 0;
    res.lengths.forEach((n, i) => {
      const lp = res.logprobs.slice(o, o + n);
      o += n;
      const mean = lp.reduce((a, b) => a + b, 0) / Math.max(1, n);
      console.log(`      #${i} ${JSON.stringify(PROMPTS[i].slice(0, 40))}: ${n} log-probs, mean ${mean.toFixed(4)} nats/token (uniform: ${(-Math.log(config.vocabSize)).toFixed(4)}), first ${lp.slice(0, 3).map((x) => x.toFixed(4)).join(", ")}`);
    });
    try {
      await client.unary("logProbs", { batch: { tokens: [1, 2, config.vocabSize + 7], lengths: [3], promptLengths: [] }, temperature: 1 });
      console.log("      (a bad request was accepted: this is a bug)");
      process.exitCode = 1;
    } catch (e) {
      const se = e as grpc.ServiceError;
      console.log(`      bad input is refused: ${grpc.status[se.code]}: ${se.details}`);
    }
    client.close();
  } finally {
    // 4. Graceful stop.
    stopChild();
    const code = await waitExit(child, 20_000);
    process.removeListener("SIGINT", stopChild);
    console.log(`[4/4] SIGTERM -> reference-model drained and exited with code ${code}`);
    if (code !== 0) process.exitCode = 1;
  }
}
