// The torch compute backend's native half: a table of ATen tensors addressed by small integer ids,
// and one N-API function per family of TensorFlow.js kernels (see ../src/kernels.ts for the
// mapping from kernel names and attributes to these calls).
//
// Conventions:
// - Every function that makes tensors stores them with put() and returns the new id; the output's
//   dtype code and shape go to the shared Int32Array `meta` (set by init), so no JS array is built
//   per call. Multi-output functions return the count and lay out [id, dtype, rank, dims...] per
//   output in `meta`.
// - dtype codes: 0 float32, 1 int32, 2 bool (TensorFlow.js' three numeric dtypes). ATen results in
//   other dtypes (int64 sums, double) are converted back so that the JS side sees tfjs' dtypes.
// - Tensors are never modified in place once stored, so views (reshape, transpose) share storage
//   safely; an output that is a small window of a larger storage (a slice) is copied so that it
//   does not keep the whole storage alive.
// - Every entry point catches C++ exceptions (c10::Error from ATen's own checks, ours) and throws a
//   JS Error with the message: bad input never terminates the process.
#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/csrc/api/include/torch/version.h>

#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

using at::Tensor;

// Per thread, which is per JavaScript environment: every environment that loads the addon (a
// process's main thread, each worker thread) runs on a thread of its own, so a model service's
// compute worker and, in one test process, the test itself and several services' workers each
// have their own tensor table, metadata buffer and device. (Shared, two environments overwrote
// each other's output shapes in the one metadata buffer.)
thread_local std::vector<Tensor> g_slots;
thread_local std::vector<int32_t> g_free;
thread_local int64_t g_live = 0;
thread_local int32_t* g_meta = nullptr;
thread_local size_t g_metaLen = 0;
thread_local Napi::Reference<Napi::Int32Array> g_metaRef;
thread_local at::Device g_device(at::kCPU);

struct Fail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum DT : int32_t { F32 = 0, I32 = 1, BOOL = 2 };

at::ScalarType scalarType(int32_t code) {
  switch (code) {
    case F32: return at::kFloat;
    case I32: return at::kInt;
    case BOOL: return at::kBool;
  }
  throw Fail("unknown dtype code " + std::to_string(code));
}

int32_t dtypeCode(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return F32;
    case at::kInt: return I32;
    case at::kBool: return BOOL;
    default: throw Fail(std::string("internal: unexpected result dtype ") + c10::toString(t));
  }
}

at::TensorOptions opts(at::ScalarType t) { return at::TensorOptions().dtype(t).device(g_device); }

/** Converts ATen's wider results back to tfjs' dtypes (int64 -> int32, double -> float32). */
Tensor normalize(Tensor t) {
  switch (t.scalar_type()) {
    case at::kFloat:
    case at::kInt:
    case at::kBool:
      return t;
    case at::kLong:
    case at::kShort:
    case at::kChar:
    case at::kByte:
      return t.to(at::kInt);
    case at::kDouble:
    case at::kHalf:
    case at::kBFloat16:
      return t.to(at::kFloat);
    default:
      throw Fail(std::string("internal: unsupported result dtype ") + c10::toString(t.scalar_type()));
  }
}

/** Copies a view that covers only part of its storage, so a slice does not pin a large buffer. */
Tensor compact(Tensor t) {
  const int64_t need = t.numel() * static_cast<int64_t>(t.element_size());
  if (t.numel() > 0 && t.storage().nbytes() > static_cast<size_t>(need) && !t.is_contiguous()) return t.contiguous();
  if (t.numel() > 0 && t.storage().nbytes() > static_cast<size_t>(need)) return t.clone();
  return t;
}

int32_t store(Tensor t) {
  int32_t id;
  if (!g_free.empty()) {
    id = g_free.back();
    g_free.pop_back();
    g_slots[id] = std::move(t);
  } else {
    id = static_cast<int32_t>(g_slots.size());
    g_slots.push_back(std::move(t));
  }
  g_live++;
  return id;
}

/** Writes [dtype, rank, dims...] at `meta[at]`; returns the next free position. */
size_t writeMeta(const Tensor& t, size_t at) {
  const size_t need = at + 2 + static_cast<size_t>(t.dim());
  if (g_meta == nullptr || need > g_metaLen) throw Fail("internal: meta buffer too small");
  g_meta[at] = dtypeCode(t.scalar_type());
  g_meta[at + 1] = static_cast<int32_t>(t.dim());
  for (int64_t d = 0; d < t.dim(); d++) {
    const int64_t s = t.size(d);
    if (s > INT32_MAX) throw Fail("dimension too large for tfjs: " + std::to_string(s));
    g_meta[at + 2 + d] = static_cast<int32_t>(s);
  }
  return need;
}

/** Stores one output and describes it in meta[0..]. */
int32_t put(Tensor t) {
  t = compact(normalize(std::move(t)));
  writeMeta(t, 0);
  return store(std::move(t));
}

/** Stores several outputs: meta = [id, dtype, rank, dims...] per output. */
int32_t putMany(std::vector<Tensor> ts) {
  size_t pos = 0;
  std::vector<int32_t> ids;
  for (auto& t : ts) {
    t = compact(normalize(std::move(t)));
    if (pos + 1 > g_metaLen) throw Fail("internal: meta buffer too small");
    pos = writeMeta(t, pos + 1);
  }
  pos = 0;
  for (auto& t : ts) {
    const int64_t rank = t.dim();
    g_meta[pos] = store(std::move(t));
    pos += 3 + static_cast<size_t>(rank);
  }
  return static_cast<int32_t>(ts.size());
}

const Tensor& get(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= g_slots.size() || !g_slots[id].defined()) {
    throw Fail("unknown or freed tensor id " + std::to_string(id));
  }
  return g_slots[id];
}

// ---- argument helpers ---------------------------------------------------------------------------

int32_t i32(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Fail("argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

double f64(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw Fail("argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool flag(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw Fail("argument " + std::to_string(i) + " missing");
  return info[i].ToBoolean().Value();
}

const Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i) { return get(i32(info, i)); }

/** A JS array (or Int32Array) of integers. */
std::vector<int64_t> ints(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw Fail("argument " + std::to_string(i) + " missing");
  std::vector<int64_t> out;
  if (info[i].IsTypedArray()) {
    auto a = info[i].As<Napi::TypedArray>();
    if (a.TypedArrayType() != napi_int32_array) throw Fail("argument " + std::to_string(i) + " must be an Int32Array");
    auto ia = a.As<Napi::Int32Array>();
    out.assign(ia.Data(), ia.Data() + ia.ElementLength());
    return out;
  }
  if (!info[i].IsArray()) throw Fail("argument " + std::to_string(i) + " must be an array of integers");
  auto arr = info[i].As<Napi::Array>();
  const uint32_t n = arr.Length();
  out.reserve(n);
  for (uint32_t k = 0; k < n; k++) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) throw Fail("argument " + std::to_string(i) + " must be an array of integers");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0) throw Fail("argument " + std::to_string(i) + " holds a non-integer");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

std::vector<Tensor> tensorList(const Napi::CallbackInfo& info, size_t i) {
  std::vector<Tensor> out;
  for (int64_t id : ints(info, i)) out.push_back(get(static_cast<int32_t>(id)));
  return out;
}

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& f) {
  Napi::Env env = info.Env();
  try {
    return f();
  } catch (const c10::Error& e) {
    Napi::Error::New(env, e.what_without_backtrace()).ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

#define ENTRY(name) Napi::Value name(const Napi::CallbackInfo& info) { return guarded(info, [&]() -> Napi::Value
#define END ); }
#define NUM(x) Napi::Number::New(info.Env(), static_cast<double>(x))

// ---- storage -------------------------------------------------------------------------------------

using SetThreadsFn = void (*)(int);
using CoreNameFn = char* (*)();

/** init(meta: Int32Array, threads: number, device: string) -> {threads, device, openblasThreads, openblasCore, torchVersion} */
ENTRY(Init) {
  if (info.Length() < 3 || !info[0].IsTypedArray()) throw Fail("init(meta: Int32Array, threads, device)");
  auto meta = info[0].As<Napi::Int32Array>();
  g_metaRef = Napi::Persistent(meta);
  // Kept until the environment ends: its thread-local destructor runs after the environment is gone.
  g_metaRef.SuppressDestruct();
  g_meta = meta.Data();
  g_metaLen = meta.ElementLength();
  const int32_t threads = i32(info, 1);
  if (threads < 1 || threads > 1024) throw Fail("threads must be in 1..1024, got " + std::to_string(threads));
  at::set_num_threads(threads);
  // OpenBLAS (Debian's libblas.so.3) starts one thread per core unless told otherwise; ATen does not
  // tell it, so matrix products would use every core whatever `threads` says.
  bool blas = false;
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
    blas = true;
  }
  const std::string dev = info[2].ToString().Utf8Value();
  g_device = at::Device(dev);
  // Fail now, not at the first kernel, when the device is unusable (e.g. cuda on a CPU-only build).
  at::ones({1}, opts(at::kFloat)).sum().item<float>();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("threads", NUM(at::get_num_threads()));
  out.Set("device", Napi::String::New(info.Env(), g_device.str()));
  out.Set("openblasThreads", Napi::Boolean::New(info.Env(), blas));
  // The kernel family OpenBLAS chose (or was told by OPENBLAS_CORETYPE): what the figures depend on.
  std::string core;
  if (auto fn = reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) {
    if (const char* name = fn()) core = name;
  }
  out.Set("openblasCore", Napi::String::New(info.Env(), core));
  out.Set("torchVersion", Napi::String::New(info.Env(), std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH)));
  return out;
}
END

/** write(values: Float32Array|Int32Array|Uint8Array, shape: number[], dtype) -> id */
ENTRY(Write) {
  if (info.Length() < 3 || !info[0].IsTypedArray()) throw Fail("write(values: TypedArray, shape, dtype)");
  auto arr = info[0].As<Napi::TypedArray>();
  const auto shape = ints(info, 1);
  const int32_t code = i32(info, 2);
  const at::ScalarType st = scalarType(code);
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Fail("negative dimension in shape");
    n *= d;
  }
  if (static_cast<int64_t>(arr.ElementLength()) != n) {
    throw Fail("values has " + std::to_string(arr.ElementLength()) + " elements, shape needs " + std::to_string(n));
  }
  const napi_typedarray_type tt = arr.TypedArrayType();
  Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
  const uint8_t* src = static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  if (st == at::kFloat && tt == napi_float32_array) {
    std::memcpy(t.data_ptr(), src, n * 4);
  } else if (st == at::kInt && tt == napi_int32_array) {
    std::memcpy(t.data_ptr(), src, n * 4);
  } else if (st == at::kBool && (tt == napi_uint8_array || tt == napi_int8_array)) {
    bool* dst = t.data_ptr<bool>();
    for (int64_t k = 0; k < n; k++) dst[k] = src[k] != 0;
  } else if (tt == napi_float32_array) {
    Tensor f = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
    std::memcpy(f.data_ptr(), src, n * 4);
    t = st == at::kBool ? f.ne(0) : f.to(st);
  } else if (tt == napi_int32_array) {
    Tensor f = at::empty(shape, at::TensorOptions().dtype(at::kInt));
    std::memcpy(f.data_ptr(), src, n * 4);
    t = st == at::kBool ? f.ne(0) : f.to(st);
  } else if (tt == napi_uint8_array) {
    Tensor f = at::empty(shape, at::TensorOptions().dtype(at::kByte));
    std::memcpy(f.data_ptr(), src, n);
    t = st == at::kBool ? f.ne(0) : f.to(st);
  } else {
    throw Fail("unsupported typed array for dtype code " + std::to_string(code));
  }
  if (g_device != at::kCPU) t = t.to(g_device);
  return NUM(put(std::move(t)));
}
END

/** read(id) -> a fresh Float32Array | Int32Array | Uint8Array copy. */
ENTRY(Read) {
  Tensor t = tensorArg(info, 0);
  if (t.device() != at::kCPU) t = t.to(at::kCPU);
  t = t.contiguous();
  const size_t n = static_cast<size_t>(t.numel());
  Napi::Env env = info.Env();
  switch (t.scalar_type()) {
    case at::kFloat: {
      auto out = Napi::Float32Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 4);
      return out;
    }
    case at::kInt: {
      auto out = Napi::Int32Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 4);
      return out;
    }
    case at::kBool: {
      auto out = Napi::Uint8Array::New(env, n);
      const bool* src = t.data_ptr<bool>();
      for (size_t k = 0; k < n; k++) out.Data()[k] = src[k] ? 1 : 0;
      return out;
    }
    default:
      throw Fail("internal: stored tensor has dtype " + std::string(c10::toString(t.scalar_type())));
  }
}
END

/** free(id): forgets the tensor (ATen frees the memory when no view of it remains). */
ENTRY(Free) {
  const int32_t id = i32(info, 0);
  get(id);
  g_slots[id] = Tensor();
  g_free.push_back(id);
  g_live--;
  return info.Env().Undefined();
}
END

/** stats() -> {tensors, slots}: tensors this addon holds now (its own count, beside tf.memory()). */
ENTRY(Stats) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("tensors", NUM(g_live));
  out.Set("slots", NUM(g_slots.size()));
  return out;
}
END

/** alias(id) -> a new id for the same tensor (Identity). */
ENTRY(Alias) { return NUM(put(tensorArg(info, 0))); }
END

// ---- element-wise --------------------------------------------------------------------------------

enum Unary : int32_t {
  U_ABS, U_NEG, U_EXP, U_EXPM1, U_LOG, U_LOG1P, U_SQRT, U_RSQRT, U_SQUARE, U_SIGMOID, U_TANH, U_SIN,
  U_COS, U_RELU, U_RELU6, U_ELU, U_SELU, U_SOFTPLUS, U_SIGN, U_FLOOR, U_CEIL, U_ROUND, U_RECIPROCAL,
  U_ERF, U_ISNAN, U_ISINF, U_ISFINITE, U_LOGICAL_NOT, U_ZEROS_LIKE, U_ONES_LIKE, U_STEP, U_LEAKY_RELU,
  U_ATAN, U_ASIN, U_ACOS, U_SINH, U_COSH, U_TAN, U_ASINH, U_ACOSH, U_ATANH
};

Tensor floatOf(const Tensor& x) { return x.is_floating_point() ? x : x.to(at::kFloat); }

/** unary(op, id, alpha) -> id */
ENTRY(UnaryOp) {
  const int32_t op = i32(info, 0);
  const Tensor& x = tensorArg(info, 1);
  const double alpha = info.Length() > 2 && info[2].IsNumber() ? f64(info, 2) : 0.0;
  Tensor r;
  switch (op) {
    case U_ABS: r = x.abs(); break;
    case U_NEG: r = x.neg(); break;
    case U_EXP: r = floatOf(x).exp(); break;
    case U_EXPM1: r = floatOf(x).expm1(); break;
    case U_LOG: r = floatOf(x).log(); break;
    case U_LOG1P: r = floatOf(x).log1p(); break;
    case U_SQRT: r = floatOf(x).sqrt(); break;
    case U_RSQRT: r = floatOf(x).rsqrt(); break;
    case U_SQUARE: r = x.mul(x); break;
    case U_SIGMOID: r = floatOf(x).sigmoid(); break;
    case U_TANH: r = floatOf(x).tanh(); break;
    case U_SIN: r = floatOf(x).sin(); break;
    case U_COS: r = floatOf(x).cos(); break;
    case U_TAN: r = floatOf(x).tan(); break;
    case U_ATAN: r = floatOf(x).atan(); break;
    case U_ASIN: r = floatOf(x).asin(); break;
    case U_ACOS: r = floatOf(x).acos(); break;
    case U_SINH: r = floatOf(x).sinh(); break;
    case U_COSH: r = floatOf(x).cosh(); break;
    case U_ASINH: r = floatOf(x).asinh(); break;
    case U_ACOSH: r = floatOf(x).acosh(); break;
    case U_ATANH: r = floatOf(x).atanh(); break;
    case U_RELU: r = x.relu(); break;
    case U_RELU6: r = x.clamp(0, 6); break;
    case U_ELU: r = at::elu(floatOf(x)); break;
    case U_SELU: r = at::selu(floatOf(x)); break;
    case U_SOFTPLUS: r = at::softplus(floatOf(x)); break;
    case U_SIGN: r = x.sign(); break;
    case U_FLOOR: r = x.floor(); break;
    case U_CEIL: r = x.ceil(); break;
    case U_ROUND: r = x.round(); break;  // half to even, as tfjs
    case U_RECIPROCAL: r = floatOf(x).reciprocal(); break;
    case U_ERF: r = floatOf(x).erf(); break;
    case U_ISNAN: r = x.isnan(); break;
    case U_ISINF: r = x.isinf(); break;
    case U_ISFINITE: r = x.isfinite(); break;
    case U_LOGICAL_NOT: r = x.to(at::kBool).logical_not(); break;
    case U_ZEROS_LIKE: r = at::zeros_like(x); break;
    case U_ONES_LIKE: r = at::ones_like(x); break;
    case U_STEP: r = at::where(x.isnan(), x, at::where(x.gt(0), at::ones_like(x), at::full_like(x, alpha))); break;
    case U_LEAKY_RELU: r = at::where(x.lt(0), x.mul(alpha), x); break;
    default: throw Fail("unknown unary op " + std::to_string(op));
  }
  return NUM(put(std::move(r)));
}
END

enum Binary : int32_t {
  B_ADD, B_SUB, B_MUL, B_DIV, B_FLOOR_DIV, B_MAX, B_MIN, B_POW, B_SQDIFF, B_MOD, B_ATAN2,
  B_GREATER, B_GREATER_EQUAL, B_LESS, B_LESS_EQUAL, B_EQUAL, B_NOT_EQUAL, B_AND, B_OR, B_DIV_NO_NAN
};

/** binary(op, a, b) -> id (numpy broadcasting, tfjs dtype rules: bool < int32 < float32). */
ENTRY(BinaryOp) {
  const int32_t op = i32(info, 0);
  const Tensor& a = tensorArg(info, 1);
  const Tensor& b = tensorArg(info, 2);
  Tensor r;
  switch (op) {
    case B_ADD: r = a.add(b); break;
    case B_SUB: r = a.sub(b); break;
    case B_MUL: r = a.mul(b); break;
    case B_DIV: r = at::div(a, b); break;
    case B_FLOOR_DIV: r = at::div(a, b, "floor").to(at::kInt); break;  // tfjs: always int32
    case B_MAX: r = at::maximum(a, b); break;
    case B_MIN: r = at::minimum(a, b); break;
    case B_POW:
      // tfjs gives int32 ** int32 as int32; ATen refuses negative integer exponents, so go through float.
      if (!a.is_floating_point() && !b.is_floating_point()) r = at::pow(a.to(at::kFloat), b.to(at::kFloat)).round().to(at::kInt);
      // A scalar exponent takes ATen's pow(Tensor, Scalar), which has fast paths for 2, 3, 0.5, -1...
      // (GELU's x^3 and its gradient's x^2: ~10x faster than the tensor-exponent kernel).
      else if (b.dim() == 0 && a.is_floating_point() && b.device() == at::kCPU) r = at::pow(a, b.item<double>());
      else r = at::pow(a, b);
      break;
    case B_SQDIFF: { Tensor d = a.sub(b); r = d.mul(d); break; }
    case B_MOD: r = at::remainder(a, b); break;
    case B_ATAN2: r = at::atan2(floatOf(a), floatOf(b)); break;
    case B_GREATER: r = a.gt(b); break;
    case B_GREATER_EQUAL: r = a.ge(b); break;
    case B_LESS: r = a.lt(b); break;
    case B_LESS_EQUAL: r = a.le(b); break;
    case B_EQUAL: r = a.eq(b); break;
    case B_NOT_EQUAL: r = a.ne(b); break;
    case B_AND: r = at::logical_and(a, b); break;
    case B_OR: r = at::logical_or(a, b); break;
    case B_DIV_NO_NAN: { Tensor q = at::div(a, b); r = at::where(b.eq(0), at::zeros_like(q), q); break; }
    default: throw Fail("unknown binary op " + std::to_string(op));
  }
  return NUM(put(std::move(r)));
}
END

/** cast(id, dtype) -> id (float -> int32 truncates toward zero; nonzero -> true). */
ENTRY(Cast) {
  const Tensor& x = tensorArg(info, 0);
  const at::ScalarType st = scalarType(i32(info, 1));
  if (x.scalar_type() == st) return NUM(put(x));
  return NUM(put(st == at::kBool ? x.ne(0) : x.to(st)));
}
END

/** clip(id, min, max) -> id */
ENTRY(Clip) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(put(at::clamp(x, f64(info, 1), f64(info, 2))));
}
END

/** select(cond, a, b) -> id; a rank-1 condition picks whole rows of higher-rank a and b (tfjs). */
ENTRY(Select) {
  Tensor c = tensorArg(info, 0).to(at::kBool);
  const Tensor& a = tensorArg(info, 1);
  const Tensor& b = tensorArg(info, 2);
  if (c.dim() == 1 && a.dim() > 1 && c.size(0) == a.size(0)) {
    std::vector<int64_t> s(a.dim(), 1);
    s[0] = c.size(0);
    c = c.view(s);
  }
  return NUM(put(at::where(c, a, b)));
}
END

/** addN(ids) -> id: summed left to right, as the other backends do. */
ENTRY(AddN) {
  auto ts = tensorList(info, 0);
  if (ts.empty()) throw Fail("AddN needs at least one input");
  Tensor acc = ts[0];
  for (size_t k = 1; k < ts.size(); k++) acc = acc.add(ts[k]);
  return NUM(put(std::move(acc)));
}
END

// ---- reductions ----------------------------------------------------------------------------------

enum Reduce : int32_t { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_ANY, R_ALL };

/** reduce(op, id, axes (non-empty, non-negative), keepDims) -> id */
ENTRY(ReduceOp) {
  const int32_t op = i32(info, 0);
  const Tensor& x = tensorArg(info, 1);
  const auto axes = ints(info, 2);
  const bool keep = flag(info, 3);
  if (axes.empty()) throw Fail("internal: reduce with no axes");
  Tensor r;
  switch (op) {
    case R_SUM: r = x.scalar_type() == at::kBool ? x.to(at::kInt).sum(axes, keep) : x.sum(axes, keep); break;
    case R_MEAN: r = floatOf(x).mean(axes, keep); break;
    case R_MAX: r = x.amax(axes, keep); break;
    case R_MIN: r = x.amin(axes, keep); break;
    case R_PROD: {
      r = x.scalar_type() == at::kBool ? x.to(at::kInt) : x;
      std::vector<int64_t> sorted(axes);
      std::sort(sorted.rbegin(), sorted.rend());
      for (int64_t a : sorted) r = r.prod(a, keep);
      break;
    }
    case R_ANY: case R_ALL: {
      r = x.to(at::kBool);
      std::vector<int64_t> sorted(axes);
      std::sort(sorted.rbegin(), sorted.rend());
      for (int64_t a : sorted) r = op == R_ANY ? r.any(a, keep) : r.all(a, keep);
      break;
    }
    default: throw Fail("unknown reduction " + std::to_string(op));
  }
  return NUM(put(std::move(r)));
}
END

/** argReduce(isMax, id, axis) -> int32 id */
ENTRY(ArgReduce) {
  const bool isMax = flag(info, 0);
  const Tensor& x = tensorArg(info, 1);
  const int64_t axis = i32(info, 2);
  return NUM(put(isMax ? x.argmax(axis) : x.argmin(axis)));
}
END

/** softmax(id, dim) -> id */
ENTRY(Softmax) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(put(floatOf(x).softmax(i32(info, 1))));
}
END

/** cumulative(isProd, id, axis, exclusive, reverse) -> id */
ENTRY(Cumulative) {
  const bool isProd = flag(info, 0);
  Tensor x = tensorArg(info, 1);
  const int64_t axis = i32(info, 2);
  const bool exclusive = flag(info, 3);
  const bool reverse = flag(info, 4);
  if (x.scalar_type() == at::kBool) x = x.to(at::kInt);
  if (reverse) x = x.flip({axis});
  Tensor r = isProd ? x.cumprod(axis) : x.cumsum(axis);
  if (exclusive && x.size(axis) > 0) {
    const int64_t n = x.size(axis);
    Tensor first = isProd ? at::ones_like(r.narrow(axis, 0, 1)) : at::zeros_like(r.narrow(axis, 0, 1));
    r = at::cat({first, r.narrow(axis, 0, n - 1)}, axis);
  }
  if (reverse) r = r.flip({axis});
  return NUM(put(std::move(r)));
}
END

// ---- linear algebra ------------------------------------------------------------------------------

/** matmul(a, b, transposeA, transposeB) -> id; batch dimensions broadcast. */
ENTRY(MatMul) {
  Tensor a = tensorArg(info, 0);
  Tensor b = tensorArg(info, 1);
  if (a.dim() < 2 || b.dim() < 2) throw Fail("matMul operands must be of rank >= 2");
  if (flag(info, 2)) a = a.transpose(-2, -1);
  if (flag(info, 3)) b = b.transpose(-2, -1);
  const int64_t ka = a.size(-1), kb = b.size(-2);
  if (ka != kb) {
    throw Fail("inner dimensions of matMul must agree: " + std::to_string(ka) + " vs " + std::to_string(kb));
  }
  if (a.scalar_type() != b.scalar_type()) {
    const at::ScalarType st = at::promote_types(a.scalar_type(), b.scalar_type());
    a = a.to(st);
    b = b.to(st);
  }
  return NUM(put(at::matmul(a, b)));
}
END

// ---- shapes and indexing -------------------------------------------------------------------------

/** reshape(id, shape) -> id (a view where possible). */
ENTRY(Reshape) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(put(x.reshape(ints(info, 1))));
}
END

/** transpose(id, perm) -> id (a view). */
ENTRY(Transpose) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(put(x.permute(ints(info, 1))));
}
END

/** slice(id, begin, size) -> id; begin and size are resolved (no -1) by the caller. */
ENTRY(Slice) {
  Tensor x = tensorArg(info, 0);
  const auto begin = ints(info, 1);
  const auto size = ints(info, 2);
  if (static_cast<int64_t>(begin.size()) != x.dim() || size.size() != begin.size()) throw Fail("slice: begin and size must have the rank of x");
  for (int64_t d = 0; d < x.dim(); d++) {
    if (begin[d] < 0 || size[d] < 0 || begin[d] + size[d] > x.size(d)) throw Fail("slice: window out of bounds on axis " + std::to_string(d));
    if (begin[d] != 0 || size[d] != x.size(d)) x = x.narrow(d, begin[d], size[d]);
  }
  return NUM(put(std::move(x)));
}
END

/** stridedSlice(id, begin, end, strides) -> id; positive strides only, bounds resolved by the caller. */
ENTRY(StridedSlice) {
  Tensor x = tensorArg(info, 0);
  const auto begin = ints(info, 1);
  const auto end = ints(info, 2);
  const auto strides = ints(info, 3);
  if (static_cast<int64_t>(begin.size()) != x.dim()) throw Fail("stridedSlice: begin must have the rank of x");
  for (int64_t d = 0; d < x.dim(); d++) {
    if (strides[d] <= 0) throw Fail("internal: stridedSlice with a non-positive stride");
    const int64_t b = std::min(std::max<int64_t>(begin[d], 0), x.size(d));
    const int64_t e = std::min(std::max<int64_t>(end[d], b), x.size(d));
    x = x.slice(d, b, e, strides[d]);
  }
  return NUM(put(std::move(x)));
}
END

/** concat(ids, axis) -> id */
ENTRY(Concat) {
  auto ts = tensorList(info, 0);
  const int64_t axis = i32(info, 1);
  if (ts.empty()) throw Fail("concat needs at least one input");
  at::ScalarType st = ts[0].scalar_type();
  for (auto& t : ts) st = at::promote_types(st, t.scalar_type());
  for (auto& t : ts) if (t.scalar_type() != st) t = t.to(st);
  return NUM(put(at::cat(ts, axis)));
}
END

/** stack(ids, axis) -> id */
ENTRY(Stack) {
  auto ts = tensorList(info, 0);
  if (ts.empty()) throw Fail("stack needs at least one input");
  return NUM(put(at::stack(ts, i32(info, 1))));
}
END

/** unstack(id, axis) -> count (outputs in meta) */
ENTRY(Unstack) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(putMany(x.unbind(i32(info, 1))));
}
END

/** split(id, sizes, axis) -> count (outputs in meta) */
ENTRY(Split) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(putMany(x.split_with_sizes(ints(info, 1), i32(info, 2))));
}
END

/** tile(id, reps) -> id */
ENTRY(Tile) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(put(x.repeat(ints(info, 1))));
}
END

/** broadcastTo(id, shape) -> id */
ENTRY(BroadcastTo) {
  const Tensor& x = tensorArg(info, 0);
  return NUM(put(x.expand(ints(info, 1)).contiguous()));
}
END

/** pad(id, paddings [before0, after0, before1, ...], value) -> id */
ENTRY(Pad) {
  const Tensor& x = tensorArg(info, 0);
  const auto p = ints(info, 1);
  if (static_cast<int64_t>(p.size()) != 2 * x.dim()) throw Fail("pad: paddings must have 2 entries per axis");
  std::vector<int64_t> torchPad;  // last axis first
  for (int64_t d = x.dim() - 1; d >= 0; d--) {
    torchPad.push_back(p[2 * d]);
    torchPad.push_back(p[2 * d + 1]);
  }
  return NUM(put(at::constant_pad_nd(x, torchPad, f64(info, 2))));
}
END

/** reverse(id, dims) -> id */
ENTRY(Reverse) {
  const Tensor& x = tensorArg(info, 0);
  const auto dims = ints(info, 1);
  if (dims.empty()) return NUM(put(x));
  return NUM(put(x.flip(dims)));
}
END

Tensor indexTensor(const Tensor& idx) { return idx.scalar_type() == at::kLong ? idx : idx.to(at::kLong); }

/**
 * gather(x, indices, batchSize, outerSize, dimSize, sliceSize, outShape) -> id: TensorFlow's
 * GatherV2 in the canonical form of tfjs' collectGatherOpShapeInfo (x as
 * [batch, outer, dim, slice], indices as [batch, n]).
 */
ENTRY(Gather) {
  const Tensor& x = tensorArg(info, 0);
  const Tensor& indices = tensorArg(info, 1);
  const int64_t batch = i32(info, 2), outer = i32(info, 3), dim = i32(info, 4), slice = i32(info, 5);
  const auto outShape = ints(info, 6);
  if (indices.is_floating_point() || indices.scalar_type() == at::kBool) throw Fail("gather: indices must be int32");
  if (batch * outer * dim * slice != x.numel()) throw Fail("internal: gather shape info does not match x");
  const int64_t n = batch == 0 ? 0 : indices.numel() / batch;
  Tensor idx = indexTensor(indices).reshape({batch, n});
  if (n > 0 && dim == 0) throw Fail("gather: index out of range: the gathered axis is empty");
  if (idx.numel() > 0) {
    const int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    if (lo < 0 || hi >= dim) {
      throw Fail("GatherV2: the index value " + std::to_string(lo < 0 ? lo : hi) + " is not in [0, " + std::to_string(dim - 1) + "]");
    }
  }
  Tensor x4 = x.reshape({batch, outer, dim, slice});
  Tensor r;
  if (batch == 1) r = x4.index_select(2, idx.reshape({n}));
  else r = at::gather(x4, 2, idx.view({batch, 1, n, 1}).expand({batch, outer, n, slice}));
  return NUM(put(r.reshape(outShape)));
}
END

/** Flat row numbers of the index tuples of `indices` [..., K] into the first K axes of `shape`. */
Tensor flatRows(const Tensor& indices, at::IntArrayRef shape, int64_t* rowsOut, const char* op) {
  if (indices.is_floating_point() || indices.scalar_type() == at::kBool) throw Fail(std::string(op) + ": indices must be int32");
  if (indices.dim() < 1) throw Fail(std::string(op) + ": indices must have rank >= 1");
  const int64_t K = indices.size(-1);
  if (K > static_cast<int64_t>(shape.size())) throw Fail(std::string(op) + ": index depth " + std::to_string(K) + " exceeds the rank");
  Tensor idx = indexTensor(indices).reshape({-1, K});
  std::vector<int64_t> strides(K, 1);
  int64_t rows = 1;
  for (int64_t j = K - 1; j >= 0; j--) {
    strides[j] = rows;
    rows *= shape[j];
  }
  *rowsOut = rows;
  if (idx.numel() > 0) {
    Tensor bounds = at::tensor(std::vector<int64_t>(shape.begin(), shape.begin() + K), at::TensorOptions().dtype(at::kLong));
    if (idx.lt(0).any().item<bool>() || idx.ge(bounds).any().item<bool>()) throw Fail(std::string(op) + ": an index is out of bounds");
  }
  Tensor st = at::tensor(strides, at::TensorOptions().dtype(at::kLong));
  return K == 0 ? at::zeros({idx.size(0)}, at::kLong) : idx.mul(st).sum(1);
}

/** gatherNd(params, indices) -> id */
ENTRY(GatherNd) {
  const Tensor& params = tensorArg(info, 0);
  const Tensor& indices = tensorArg(info, 1);
  int64_t rows = 0;
  Tensor flat = flatRows(indices, params.sizes(), &rows, "gatherND");
  const int64_t K = indices.size(-1);
  std::vector<int64_t> sliceShape(params.sizes().begin() + K, params.sizes().end());
  int64_t slice = 1;
  for (int64_t s : sliceShape) slice *= s;
  Tensor r = params.reshape({rows, slice}).index_select(0, flat);
  std::vector<int64_t> outShape(indices.sizes().begin(), indices.sizes().end() - 1);
  outShape.insert(outShape.end(), sliceShape.begin(), sliceShape.end());
  return NUM(put(r.reshape(outShape)));
}
END

/** scatterNd(indices, updates, shape) -> id; repeated indices add up. */
ENTRY(ScatterNd) {
  const Tensor& indices = tensorArg(info, 0);
  const Tensor& updates = tensorArg(info, 1);
  const auto shape = ints(info, 2);
  int64_t rows = 0;
  Tensor flat = flatRows(indices, shape, &rows, "scatterND");
  const int64_t K = indices.size(-1);
  int64_t slice = 1;
  for (size_t j = K; j < shape.size(); j++) slice *= shape[j];
  if (updates.numel() != flat.size(0) * slice) throw Fail("scatterND: updates has " + std::to_string(updates.numel()) + " elements, expected " + std::to_string(flat.size(0) * slice));
  Tensor upd = updates.scalar_type() == at::kBool ? updates.to(at::kInt) : updates;
  Tensor out = at::zeros({rows, slice}, opts(upd.scalar_type()));
  out.index_add_(0, flat, upd.reshape({flat.size(0), slice}));
  out = out.reshape(shape);
  if (updates.scalar_type() == at::kBool) out = out.ne(0);
  return NUM(put(std::move(out)));
}
END

/** unsortedSegmentSum(x, segmentIds, numSegments) -> id; ids outside [0, numSegments) are dropped. */
ENTRY(UnsortedSegmentSum) {
  const Tensor& x = tensorArg(info, 0);
  const Tensor& ids = tensorArg(info, 1);
  const int64_t num = i32(info, 2);
  if (num < 0) throw Fail("numSegments must be >= 0");
  if (ids.dim() > x.dim()) throw Fail("segmentIds rank exceeds x rank");
  for (int64_t d = 0; d < ids.dim(); d++) if (ids.size(d) != x.size(d)) throw Fail("segmentIds shape must be a prefix of x shape");
  std::vector<int64_t> inner(x.sizes().begin() + ids.dim(), x.sizes().end());
  int64_t innerN = 1;
  for (int64_t s : inner) innerN *= s;
  Tensor flatIds = indexTensor(ids).reshape({-1});
  Tensor xs = (x.scalar_type() == at::kBool ? x.to(at::kInt) : x).reshape({flatIds.size(0), innerN});
  Tensor out = at::zeros({num, innerN}, opts(xs.scalar_type()));
  if (flatIds.numel() > 0 && num > 0) {
    Tensor valid = flatIds.ge(0).logical_and(flatIds.lt(num));
    if (valid.all().item<bool>()) {
      out.index_add_(0, flatIds, xs);
    } else {
      Tensor keep = valid.nonzero().reshape({-1});
      out.index_add_(0, flatIds.index_select(0, keep), xs.index_select(0, keep));
    }
  }
  std::vector<int64_t> outShape{num};
  outShape.insert(outShape.end(), inner.begin(), inner.end());
  return NUM(put(out.reshape(outShape)));
}
END

/** oneHot(indices, depth, onValue, offValue, dtype) -> id; out-of-range indices give all off. */
ENTRY(OneHot) {
  const Tensor& idx = tensorArg(info, 0);
  const int64_t depth = i32(info, 1);
  const double on = f64(info, 2), off = f64(info, 3);
  const at::ScalarType st = scalarType(i32(info, 4));
  Tensor hot = idx.to(at::kLong).unsqueeze(-1).eq(at::arange(depth, at::TensorOptions().dtype(at::kLong).device(g_device)));
  Tensor r = at::where(hot, at::full({}, on, opts(st)), at::full({}, off, opts(st)));
  return NUM(put(std::move(r)));
}
END

/** fill(shape, value, dtype) -> id */
ENTRY(Fill) {
  const auto shape = ints(info, 0);
  const double v = f64(info, 1);
  const at::ScalarType st = scalarType(i32(info, 2));
  return NUM(put(st == at::kBool ? at::full(shape, v != 0, opts(st)) : at::full(shape, v, opts(st))));
}
END

/** topk(x, k, sorted) -> 2 (values, int32 indices) along the last axis. */
ENTRY(TopK) {
  const Tensor& x = tensorArg(info, 0);
  const int64_t k = i32(info, 1);
  auto r = x.topk(k, -1, true, true);
  return NUM(putMany({std::get<0>(r), std::get<1>(r)}));
}
END

// ---- fused kernels -------------------------------------------------------------------------------

/**
 * adamw(param, m, v, grad, lr, beta1, beta2, eps, decay, bc1, bc2, gradScale) -> 3 (param, m, v):
 * the update of libs/model's AdamW in one call, the same arithmetic in the same order.
 */
ENTRY(AdamW) {
  const Tensor& p = tensorArg(info, 0);
  const Tensor& m = tensorArg(info, 1);
  const Tensor& v = tensorArg(info, 2);
  const Tensor& g0 = tensorArg(info, 3);
  const double lr = f64(info, 4), b1 = f64(info, 5), b2 = f64(info, 6), eps = f64(info, 7), decay = f64(info, 8);
  const double bc1 = f64(info, 9), bc2 = f64(info, 10), gradScale = f64(info, 11);
  if (p.sizes() != m.sizes() || p.sizes() != v.sizes() || p.sizes() != g0.sizes()) throw Fail("adamw: param, moments and gradient must have one shape");
  for (const Tensor* t : {&p, &m, &v, &g0}) if (t->scalar_type() != at::kFloat) throw Fail("adamw: every input must be float32");
  // The constants as float32, as the tfjs ops see them (scalars of a float32 tensor).
  const float fb1 = static_cast<float>(b1), f1b1 = static_cast<float>(1 - b1), fb2 = static_cast<float>(b2), f1b2 = static_cast<float>(1 - b2);
  const float fbc1 = static_cast<float>(bc1), fbc2 = static_cast<float>(bc2), feps = static_cast<float>(eps), flr = static_cast<float>(lr);
  const float fdecay = static_cast<float>(decay), fscale = static_cast<float>(gradScale);
  if (p.device() == at::kCPU) {
    // One pass over the four inputs into the three outputs, each operation rounded to float32 in
    // the order libs/model's AdamW applies them (no temporaries: the step is memory-bound).
    Tensor pc = p.contiguous(), mc = m.contiguous(), vc = v.contiguous(), gc = g0.contiguous();
    Tensor p1 = at::empty_like(pc), m1 = at::empty_like(mc), v1 = at::empty_like(vc);
    const float *P = pc.data_ptr<float>(), *M = mc.data_ptr<float>(), *V = vc.data_ptr<float>(), *G = gc.data_ptr<float>();
    float *P1 = p1.data_ptr<float>(), *M1 = m1.data_ptr<float>(), *V1 = v1.data_ptr<float>();
    const int64_t n = pc.numel();
    const bool scale = gradScale != 1, decayed = decay != 1;
    for (int64_t i = 0; i < n; i++) {
      const float g = scale ? G[i] * fscale : G[i];
      const float mi = M[i] * fb1 + g * f1b1;
      const float gg = g * g;
      const float vi = V[i] * fb2 + gg * f1b2;
      const float update = (mi / fbc1) / (std::sqrt(vi / fbc2) + feps);
      const float pd = decayed ? P[i] * fdecay : P[i];
      P1[i] = pd - update * flr;
      M1[i] = mi;
      V1[i] = vi;
    }
    return NUM(putMany({p1, m1, v1}));
  }
  Tensor g = gradScale == 1 ? g0 : g0.mul(fscale);
  Tensor m1 = m.mul(fb1).add(g.mul(f1b1));
  Tensor v1 = v.mul(fb2).add(g.mul(g).mul(f1b2));
  Tensor update = m1.div(fbc1).div(v1.div(fbc2).sqrt().add(feps));
  Tensor decayedP = decay == 1 ? p : p.mul(fdecay);
  Tensor p1 = decayedP.sub(update.mul(flr));
  return NUM(putMany({p1, m1, v1}));
}
END

/** gelu(x) -> id: GELU, tanh form (GPT-2's "gelu_new"). */
ENTRY(Gelu) { return NUM(put(at::gelu(floatOf(tensorArg(info, 0)), "tanh"))); }
END

/** geluGrad(dy, x) -> id: the gradient of gelu at x times dy. */
ENTRY(GeluGrad) { return NUM(put(at::gelu_backward(tensorArg(info, 0), floatOf(tensorArg(info, 1)), "tanh"))); }
END

/** softmaxGrad(dy, y, dim) -> id: the gradient of y = softmax(x, dim) with respect to x, times dy. */
ENTRY(SoftmaxGrad) {
  const Tensor& dy = tensorArg(info, 0);
  const Tensor& y = tensorArg(info, 1);
  if (dy.sizes() != y.sizes()) throw Fail("softmaxGrad: dy and y must have one shape");
  return NUM(put(at::_softmax_backward_data(dy.contiguous(), y.contiguous(), i32(info, 2), y.scalar_type())));
}
END

/** sumSquares(ids) -> id: a float32 scalar, sum over every tensor of the sum of its squares (global gradient norm^2). */
ENTRY(SumSquares) {
  auto ts = tensorList(info, 0);
  Tensor acc = at::zeros({}, opts(at::kFloat));
  for (auto& t : ts) acc = acc.add(floatOf(t).square().sum());
  return NUM(put(std::move(acc)));
}
END

/** layerNorm(x, gamma, beta, eps) -> id: LayerNorm over the last axis (biased variance). */
ENTRY(LayerNorm) {
  const Tensor& x = tensorArg(info, 0);
  const Tensor& g = tensorArg(info, 1);
  const Tensor& b = tensorArg(info, 2);
  const double eps = f64(info, 3);
  if (x.dim() < 1 || g.dim() != 1 || b.dim() != 1 || g.size(0) != x.size(-1) || b.size(0) != x.size(-1)) {
    throw Fail("layerNorm: gamma and beta must be vectors of the last dimension of x");
  }
  return NUM(put(at::layer_norm(floatOf(x), {x.size(-1)}, g, b, eps)));
}
END

/** layerNormGrad(dy, x, gamma, beta, eps) -> 3 (dx, dgamma, dbeta); mean and rstd are recomputed from x. */
ENTRY(LayerNormGrad) {
  const Tensor& dy = tensorArg(info, 0);
  const Tensor& x = tensorArg(info, 1);
  const Tensor& g = tensorArg(info, 2);
  const Tensor& b = tensorArg(info, 3);
  const double eps = f64(info, 4);
  if (dy.sizes() != x.sizes()) throw Fail("layerNormGrad: dy and x must have one shape");
  const std::vector<int64_t> normalized{x.size(-1)};
  Tensor xc = x.contiguous();
  auto fwd = at::native_layer_norm(xc, normalized, g, b, eps);
  auto r = at::native_layer_norm_backward(dy.contiguous(), xc, normalized, std::get<1>(fwd), std::get<2>(fwd), g, b, {true, true, true});
  return NUM(putMany({std::get<0>(r), std::get<1>(r), std::get<2>(r)}));
}
END

/** Splits qkv [B, T, 3C] into q, k, v as [B, H, T, D] views. */
std::array<Tensor, 3> heads(const Tensor& qkv, int64_t H) {
  if (qkv.dim() != 3 || qkv.size(2) % (3 * H) != 0) throw Fail("attention: qkv must be [B, T, 3C] with C a multiple of nHead");
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, D = C / H;
  auto parts = qkv.split(C, 2);
  std::array<Tensor, 3> out;
  for (int i = 0; i < 3; i++) out[i] = parts[i].reshape({B, T, H, D}).transpose(1, 2);
  return out;
}

/**
 * causalAttention(qkv, nHead) -> 2 (y [B, T, C], probs [B, H, T, T]): multi-head causal
 * self-attention as libs/model writes it (scores q k^T times 1/sqrt(D), -1e9 above the diagonal,
 * softmax, times v, heads merged), in one call; probs are kept for the gradient.
 */
ENTRY(CausalAttention) {
  const Tensor& qkv = tensorArg(info, 0);
  const int64_t H = i32(info, 1);
  if (H < 1) throw Fail("attention: nHead must be >= 1");
  auto [q, k, v] = heads(floatOf(qkv), H);
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, D = C / H;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul(scale);  // [B, H, T, T]
  Tensor mask = at::ones({T, T}, at::TensorOptions().dtype(at::kBool).device(g_device)).triu(1);
  scores.masked_fill_(mask, -1e9f);
  Tensor p = scores.softmax(-1);
  Tensor y = at::matmul(p, v).transpose(1, 2).reshape({B, T, C});
  return NUM(putMany({y, p}));
}
END

/** causalAttentionGrad(dy [B, T, C], qkv, probs, nHead) -> id: the gradient with respect to qkv [B, T, 3C]. */
ENTRY(CausalAttentionGrad) {
  const Tensor& dy = tensorArg(info, 0);
  const Tensor& qkv = tensorArg(info, 1);
  const Tensor& p = tensorArg(info, 2);
  const int64_t H = i32(info, 3);
  auto [q, k, v] = heads(floatOf(qkv), H);
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, D = C / H;
  if (dy.dim() != 3 || dy.size(0) != B || dy.size(1) != T || dy.size(2) != C) throw Fail("attentionGrad: dy must be [B, T, C]");
  if (p.dim() != 4 || p.size(0) != B || p.size(1) != H || p.size(2) != T || p.size(3) != T) throw Fail("attentionGrad: probs must be [B, H, T, T]");
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  Tensor dyh = dy.reshape({B, T, H, D}).transpose(1, 2);                                   // [B, H, T, D]
  Tensor dv = at::matmul(p.transpose(-2, -1), dyh);                                         // [B, H, T, D]
  Tensor dp = at::matmul(dyh, v.transpose(-2, -1));                                         // [B, H, T, T]
  Tensor ds = at::_softmax_backward_data(dp, p.contiguous(), -1, at::kFloat).mul(scale);  // [B, H, T, T]
  Tensor dq = at::matmul(ds, k);                                                            // [B, H, T, D]
  Tensor dk = at::matmul(ds.transpose(-2, -1), q);                                          // [B, H, T, D]
  auto merge = [&](const Tensor& t) { return t.transpose(1, 2).reshape({B, T, C}); };
  return NUM(put(at::cat({merge(dq), merge(dk), merge(dv)}, 2)));
}
END

/** Checks logits [N, V] and int32 targets [N]; returns targets as int64 [N, 1]. */
Tensor targetIndex(const Tensor& logits, const Tensor& targets, const char* op) {
  if (logits.dim() != 2 || targets.dim() != 1 || targets.size(0) != logits.size(0)) throw Fail(std::string(op) + ": logits must be [N, V] and targets [N]");
  if (targets.is_floating_point() || targets.scalar_type() == at::kBool) throw Fail(std::string(op) + ": targets must be int32");
  Tensor t = targets.to(at::kLong);
  if (t.numel() > 0 && (t.min().item<int64_t>() < 0 || t.max().item<int64_t>() >= logits.size(1))) {
    throw Fail(std::string(op) + ": a target is outside [0, " + std::to_string(logits.size(1)) + ")");
  }
  return t.unsqueeze(1);
}

/** targetLogProbs(logits [N, V], targets [N], temperature) -> [N]: log softmax(logits / T)[n, targets[n]]. */
ENTRY(TargetLogProbs) {
  const Tensor& logits = tensorArg(info, 0);
  Tensor idx = targetIndex(logits, tensorArg(info, 1), "targetLogProbs");
  const double T = f64(info, 2);
  Tensor z = T == 1 ? floatOf(logits) : floatOf(logits).div(static_cast<float>(T));
  return NUM(put(z.gather(1, idx).squeeze(1).sub(z.logsumexp(1))));
}
END

/** targetLogProbsGrad(dy [N], logits, targets, temperature) -> [N, V]: dy (onehot(target) - softmax(z)) / T. */
ENTRY(TargetLogProbsGrad) {
  const Tensor& dy = tensorArg(info, 0);
  const Tensor& logits = tensorArg(info, 1);
  Tensor idx = targetIndex(logits, tensorArg(info, 2), "targetLogProbsGrad");
  const double T = f64(info, 3);
  if (dy.dim() != 1 || dy.size(0) != logits.size(0)) throw Fail("targetLogProbsGrad: dy must be [N]");
  Tensor z = T == 1 ? floatOf(logits) : floatOf(logits).div(static_cast<float>(T));
  Tensor d = z.softmax(1).mul(dy.unsqueeze(1)).neg_();
  d.scatter_add_(1, idx, dy.unsqueeze(1));
  if (T != 1) d.div_(static_cast<float>(T));
  return NUM(put(std::move(d)));
}
END

}  // namespace

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("write", Napi::Function::New(env, Write));
  exports.Set("read", Napi::Function::New(env, Read));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("alias", Napi::Function::New(env, Alias));
  exports.Set("unary", Napi::Function::New(env, UnaryOp));
  exports.Set("binary", Napi::Function::New(env, BinaryOp));
  exports.Set("cast", Napi::Function::New(env, Cast));
  exports.Set("clip", Napi::Function::New(env, Clip));
  exports.Set("select", Napi::Function::New(env, Select));
  exports.Set("addN", Napi::Function::New(env, AddN));
  exports.Set("reduce", Napi::Function::New(env, ReduceOp));
  exports.Set("argReduce", Napi::Function::New(env, ArgReduce));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("cumulative", Napi::Function::New(env, Cumulative));
  exports.Set("matmul", Napi::Function::New(env, MatMul));
  exports.Set("reshape", Napi::Function::New(env, Reshape));
  exports.Set("transpose", Napi::Function::New(env, Transpose));
  exports.Set("slice", Napi::Function::New(env, Slice));
  exports.Set("stridedSlice", Napi::Function::New(env, StridedSlice));
  exports.Set("concat", Napi::Function::New(env, Concat));
  exports.Set("stack", Napi::Function::New(env, Stack));
  exports.Set("unstack", Napi::Function::New(env, Unstack));
  exports.Set("split", Napi::Function::New(env, Split));
  exports.Set("tile", Napi::Function::New(env, Tile));
  exports.Set("broadcastTo", Napi::Function::New(env, BroadcastTo));
  exports.Set("pad", Napi::Function::New(env, Pad));
  exports.Set("reverse", Napi::Function::New(env, Reverse));
  exports.Set("gather", Napi::Function::New(env, Gather));
  exports.Set("gatherNd", Napi::Function::New(env, GatherNd));
  exports.Set("scatterNd", Napi::Function::New(env, ScatterNd));
  exports.Set("unsortedSegmentSum", Napi::Function::New(env, UnsortedSegmentSum));
  exports.Set("oneHot", Napi::Function::New(env, OneHot));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("topk", Napi::Function::New(env, TopK));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("gelu", Napi::Function::New(env, Gelu));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad));
  exports.Set("softmaxGrad", Napi::Function::New(env, SoftmaxGrad));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("targetLogProbs", Napi::Function::New(env, TargetLogProbs));
  exports.Set("targetLogProbsGrad", Napi::Function::New(env, TargetLogProbsGrad));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGrad));
  exports.Set("causalAttention", Napi::Function::New(env, CausalAttention));
  exports.Set("causalAttentionGrad", Napi::Function::New(env, CausalAttentionGrad));
  return exports;
}

NODE_API_MODULE(rlhf_torch, InitModule)
