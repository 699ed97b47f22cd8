# The native half of @rlhf/torch-backend (built by scripts/build-addon.mjs, which passes torch_dir).
# torch_dir: a libtorch prefix with include/ATen and lib/ (Debian's libtorch-dev: /usr; an official
# libtorch download, CPU or CUDA: its unpacked folder). torch_cuda=1 also links libtorch_cuda.
{
  "variables": {
    "torch_dir%": "/usr",
    "torch_cuda%": "0"
  },
  "targets": [
    {
      "target_name": "rlhf_torch",
      "sources": ["addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<(torch_dir)/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-O2", "-ffp-contract=off", "-fexceptions", "-Wno-unused-parameter"],
      "libraries": ["-L<(torch_dir)/lib", "-Wl,-rpath,<(torch_dir)/lib", "-ltorch_cpu", "-lc10"],
      "conditions": [
        ["torch_cuda=='1'", { "libraries": ["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed"] }]
      ]
    }
  ]
}
