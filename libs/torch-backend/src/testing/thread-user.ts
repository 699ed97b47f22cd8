// A worker thread of threads.test.ts: registers the torch backend in its own environment, keeps
// a tensor, and answers each message with the shape and sum of one matmul.
import { parentPort } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { nativeTensorCount, registerTorchBackend } from "../index";

registerTorchBackend();
void tf.setBackend("torch").then(() => {
  const kept = tf.ones([7, 7]);
  parentPort!.on("message", ([m, k, n]: number[]) => {
    const out = tf.tidy(() => tf.matMul(tf.ones([m, k]), tf.ones([k, n])));
    parentPort!.postMessage({ shape: out.shape, sum: (tf.sum(out).dataSync() as Float32Array)[0], live: nativeTensorCount(), kept: kept.shape });
    out.dispose();
  });
  parentPort!.postMessage("ready");
});
