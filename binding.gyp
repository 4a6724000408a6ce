{
  "targets": [
    {
      "target_name": "layerskip_avx2",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('fs').readdirSync('cpu').filter(f => f.endsWith('_avx2.cc')).map(f => 'cpu/' + f).join(' ')\")"],
      "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-ffp-contract=off", "-mavx2", "-mfma", "-mf16c"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "defines": ["LAYERSKIP_HAVE_AVX2=1", "LAYERSKIP_HAVE_AVX512=1"]
    },
    {
      "target_name": "layerskip",
      "dependencies": ["layerskip_avx2"],
      "sources": [
        "<!@(node -p \"['core', 'cpu', 'train', 'binding'].flatMap(d => require('fs').readdirSync(d).filter(f => f.endsWith('.cc') && !f.endsWith('_avx2.cc')).map(f => d + '/' + f)).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "LAYERSKIP_HAVE_AVX2=1", "LAYERSKIP_HAVE_AVX512=1"],
      "cflags_cc": ["-std=c++17", "-O3", "-ffp-contract=off"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags!": ["-fno-exceptions"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LIBRARY": "libc++", "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"] },
      "libraries": ["-lpthread"]
    }
  ]
}
