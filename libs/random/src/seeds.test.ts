// Every seed keeps its numbers: these values were captured from the generators before they moved
// here (libs/data/src/rng.ts, libs/model/src/random.ts, libs/rl/src/stats.ts, libs/model/src/train.ts
// at 32e5eec), so a run with the same seed computes exactly what it computed before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Mulberry32, Rng, Xoshiro128ss, epochPermutation, hashString, hashedNormal, mix32, mixSeed, permutation, seedOf } from "./index";

const CAPTURED: Record<string, unknown> = {
 "splitmix 0": {
  "u32": [
   1402390477,
   2822779791,
   2974584951
  ],
  "uniform": 0.5736724020680413,
  "int": 182,
  "normal": -0.09587099507459645,
  "state": 3319189072
 },
 "xoshiro 0": {
  "u32": [
   1985389114,
   788364940,
   520967071
  ],
  "uniform": 0.35934170021209866,
  "normal": [
   1.200157848509985,
   -0.7360209550320881,
   -1.455685757965377
  ],
  "fill": [
   0.005934523418545723,
   0.0024046481121331453,
   0.010390214622020721
  ]
 },
 "xoshiro-nostream 0": [
  3649464103,
  140838777
 ],
 "splitmix 1": {
  "u32": [
   1245243256,
   2972504433,
   2631083179
  ],
  "uniform": 0.8032046196749434,
  "int": 759,
  "normal": -1.7902850223885534,
  "state": 3608983882
 },
 "xoshiro 1": {
  "u32": [
   1526846540,
   394650967,
   1730358633
  ],
  "uniform": 0.6377839747583494,
  "normal": [
   2.0403483677824887,
   1.0695703754523984,
   0.28589043921563495
  ],
  "fill": [
   -0.014032830484211445,
   0.006907799746841192,
   0.020487064495682716
  ]
 },
 "xoshiro-nostream 1": [
  4035236452,
  3832429851
 ],
 "splitmix 42": {
  "u32": [
   1150766277,
   1174774606,
   3411481109
  ],
  "uniform": 0.25555861729662865,
  "int": 241,
  "normal": -0.8571170270610542,
  "state": 1258864254
 },
 "xoshiro 42": {
  "u32": [
   867073795,
   3999900671,
   1640129044
  ],
  "uniform": 0.25619717955123633,
  "normal": [
   0.8132510085219952,
   0.6780659632128017,
   -0.2836926788675928
  ],
  "fill": [
   0.00437711738049984,
   0.02201562561094761,
   -0.02009834721684456
  ]
 },
 "xoshiro-nostream 42": [
  3608276398,
  428980816
 ],
 "splitmix -7": {
  "u32": [
   3083326162,
   1917228755,
   2137346059
  ],
  "uniform": 0.6867908622371033,
  "int": 886,
  "normal": 0.4038709655251609,
  "state": 179688038
 },
 "xoshiro -7": {
  "u32": [
   3028515282,
   2575650853,
   3196884053
  ],
  "uniform": 0.7797882942249998,
  "normal": [
   -0.9936834079611805,
   0.4035383569898716,
   2.7813582209731114
  ],
  "fill": [
   -0.006598513573408127,
   0.01979951374232769,
   0.008982020430266857
  ]
 },
 "xoshiro-nostream -7": [
  2740687244,
  1198488009
 ],
 "splitmix 1099511627779": {
  "u32": [
   857824177,
   1909231516,
   847228676
  ],
  "uniform": 0.02205924515146762,
  "int": 577,
  "normal": -0.2304072488803623,
  "state": 2378754069
 },
 "xoshiro 1099511627779": {
  "u32": [
   2298093955,
   2889155964,
   1444158037
  ],
  "uniform": 0.741499939118512,
  "normal": [
   0.5825107852783205,
   -0.6551488829324977,
   -1.724166713465599
  ],
  "fill": [
   -0.028436651453375816,
   -0.005741618108004332,
   0.018013516440987587
  ]
 },
 "xoshiro-nostream 1099511627779": [
  1483007350,
  1613630395
 ],
 "mulberry 0": {
  "mix": 679246888,
  "u32": [
   1674739281,
   3956392805
  ],
  "next": 0.6890784448478371,
  "int": 71
 },
 "epochPermutation 0": [
  5,
  2,
  1,
  9,
  3,
  6,
  7,
  8,
  4,
  0
 ],
 "mulberry 1": {
  "mix": 910785556,
  "u32": [
   1522445228,
   753290939
  ],
  "next": 0.3712067233864218,
  "int": 56
 },
 "epochPermutation 1": [
  1,
  3,
  4,
  0,
  2,
  6,
  9,
  7,
  8,
  5
 ],
 "mulberry 42": {
  "mix": 714595633,
  "u32": [
   3974726920,
   2123616081
  ],
  "next": 0.12570199090987444,
  "int": 94
 },
 "epochPermutation 42": [
  7,
  6,
  8,
  4,
  9,
  5,
  2,
  1,
  3,
  0
 ],
 "mulberry 1099511627779": {
  "mix": 3325116976,
  "u32": [
   2122462518,
   264491573
  ],
  "next": 0.11989257903769612,
  "int": 48
 },
 "epochPermutation 1099511627779": [
  5,
  8,
  7,
  4,
  6,
  0,
  3,
  1,
  2,
  9
 ],
 "mulberryRaw": [
  4207900869,
  1317490944
 ],
 "hashString": [
  164558732,
  2081086145,
  290302672
 ],
 "mix32": [
  2462723854,
  2527132011,
  920564995
 ],
 "seedOf": [
  2521747260,
  3876013719,
  4105412254
 ],
 "hashedNormal": [
  -0.6744788331610793,
  -1.4417064127138104
 ],
 "permutation": [
  1,
  7,
  10,
  9,
  0,
  11,
  8,
  4,
  3,
  6,
  5,
  2
 ],
 "shuffle": [
  "b",
  "a",
  "e",
  "d",
  "c"
 ],
 "pick": "y"
};

function current(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of [0, 1, 42, -7, 2 ** 40 + 3]) {
    const d = new Rng(s, "pretrain-mix-windows", 3);
    out[`splitmix ${s}`] = { u32: [d.nextU32(), d.nextU32(), d.nextU32()], uniform: d.uniform(), int: d.int(1000), normal: d.normal(), state: d.state };
    const m = new Xoshiro128ss(s, "h.0.attn.c_attn.weight");
    out[`xoshiro ${s}`] = { u32: [m.nextU32(), m.nextU32(), m.nextU32()], uniform: m.uniform(), normal: [m.normal(), m.normal(), m.normal()], fill: Array.from(m.fillNormal(new Float32Array(3), 0.02)) };
    const m0 = new Xoshiro128ss(s);
    out[`xoshiro-nostream ${s}`] = [m0.nextU32(), m0.nextU32()];
  }
  for (const s of [0, 1, 42, 2 ** 40 + 3]) {
    const b = new Mulberry32(mixSeed(s, 2));
    out[`mulberry ${s}`] = { mix: mixSeed(s, 2), u32: [b.nextU32(), b.nextU32()], next: b.next(), int: b.int(97) };
    out[`epochPermutation ${s}`] = epochPermutation(10, s, 1);
  }
  const raw = new Mulberry32(12345);
  out.mulberryRaw = [raw.nextU32(), raw.nextU32()];
  out.hashString = ["", "a", "pretrain-mix-windows"].map((x) => hashString(x));
  out.mix32 = [0, 1, 0xffffffff].map((x) => mix32(x));
  out.seedOf = [seedOf(5), seedOf(5, "x", 2), seedOf(-3, 7)];
  out.hashedNormal = [hashedNormal(1, "labeler", 2, "resp", 0), hashedNormal(99)];
  out.permutation = permutation(12, new Rng(7, "p"));
  out.shuffle = new Rng(3).shuffle(["a", "b", "c", "d", "e"]);
  out.pick = new Rng(11).pick(["x", "y", "z"]);
  return out;
}

test("every generator gives, for fixed seeds, exactly the numbers it gave before the move", () => {
  assert.deepEqual(JSON.parse(JSON.stringify(current())), CAPTURED);
});
