# The CUDA backend (cuda/*.cu) as the static library layerskip_cuda, linked into layerskip_engine.
#   LAYERSKIP_CUDA        AUTO (default): build it when a working nvcc is found, otherwise CPU only, with a message.
#                         ON: fail the configure when CUDA is missing.  OFF: never build it.
#   LAYERSKIP_CUDA_ARCHS  CMAKE_CUDA_ARCHITECTURES for the kernels. Default: SASS for sm_80/86/89 and sm_90 plus
#                         compute_90 PTX so newer GPUs (Blackwell) JIT-compile it.
#   LAYERSKIP_CUDA_EMULATOR  ON: build the same sources with the host compiler against the CPU emulator
#                         (cuda/emulator/), for testing the kernels on machines without a GPU. Needs the CUDA
#                         toolkit's headers, not a GPU or driver. Never for real use: it is thousands of times slower.
# Included by the top-level CMakeLists.txt after layerskip_engine is defined and before the test executable.
option(LAYERSKIP_CUDA_EMULATOR "Build the CUDA backend on the CPU emulator (tests only)" OFF)
if(LAYERSKIP_CUDA_EMULATOR)
  find_package(CUDAToolkit)
  if(NOT CUDAToolkit_FOUND)
    message(FATAL_ERROR "LAYERSKIP_CUDA_EMULATOR=ON needs the CUDA toolkit's headers (cuda_runtime.h, cuda_bf16.h); "
                        "none were found. Install the toolkit or set CUDAToolkit_ROOT.")
  endif()
  file(GLOB LAYERSKIP_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu)
  file(GLOB LAYERSKIP_EMULATOR_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/emulator/*.cc)
  # .cu files as C++: -x c++ before the file name, device.h force-included ahead of every CUDA header.
  set_source_files_properties(${LAYERSKIP_CUDA_SOURCES} PROPERTIES LANGUAGE CXX COMPILE_OPTIONS
                              "-x;c++;-include;${CMAKE_CURRENT_LIST_DIR}/emulator/device.h")
  add_library(layerskip_cuda STATIC ${LAYERSKIP_CUDA_SOURCES} ${LAYERSKIP_EMULATOR_SOURCES})
  target_include_directories(layerskip_cuda PUBLIC ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(layerskip_cuda PRIVATE -O2 -ffp-contract=off -Wall -Wno-unknown-pragmas -Wno-attributes
                                                -Wno-unused-parameter)
  target_compile_definitions(layerskip_cuda PUBLIC LAYERSKIP_CUDA_EMULATOR=1
                                            PRIVATE LAYERSKIP_CUDA_ARCHS_STRING="emulator")
  target_link_libraries(layerskip_engine PUBLIC layerskip_cuda)
  target_compile_definitions(layerskip_engine PUBLIC LAYERSKIP_HAVE_CUDA=1)
  message(STATUS "layerskip: CUDA backend on the CPU emulator (test build; CUDA headers from ${CUDAToolkit_INCLUDE_DIRS})")
  return()
endif()

set(LAYERSKIP_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO, ON or OFF")
set_property(CACHE LAYERSKIP_CUDA PROPERTY STRINGS AUTO ON OFF)
set(LAYERSKIP_CUDA_ARCHS "80-real;86-real;89-real;90" CACHE STRING "CUDA architectures for the CUDA backend")

string(TOUPPER "${LAYERSKIP_CUDA}" layerskip_cuda_mode)
if(NOT layerskip_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "LAYERSKIP_CUDA must be AUTO, ON or OFF, got \"${LAYERSKIP_CUDA}\"")
endif()

set(layerskip_cuda_enabled FALSE)
if(layerskip_cuda_mode STREQUAL "OFF")
  message(STATUS "layerskip: CUDA backend disabled (LAYERSKIP_CUDA=OFF)")
else()
  # check_language runs a trial project with nvcc, so a broken toolchain shows up here as "not found".
  # The architectures are set first: the trial must not pick an architecture this nvcc no longer supports.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "${LAYERSKIP_CUDA_ARCHS}")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(layerskip_cuda_enabled TRUE)
  elseif(layerskip_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "LAYERSKIP_CUDA=ON but no working CUDA compiler (nvcc) was found. Install the CUDA "
                        "toolkit and put nvcc on PATH (or set CMAKE_CUDA_COMPILER), or use LAYERSKIP_CUDA=AUTO.")
  else()
    message(STATUS "layerskip: no working CUDA compiler found; building the CPU backend only")
  endif()
endif()

if(layerskip_cuda_enabled)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  file(GLOB LAYERSKIP_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu)
  add_library(layerskip_cuda STATIC ${LAYERSKIP_CUDA_SOURCES})
  set_target_properties(layerskip_cuda PROPERTIES CUDA_ARCHITECTURES "${LAYERSKIP_CUDA_ARCHS}"
                                                  POSITION_INDEPENDENT_CODE ON)
  # No fast-math: expf/sqrtf stay IEEE-accurate so results track the CPU reference.
  target_compile_options(layerskip_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --expt-relaxed-constexpr
                                                -Xcompiler=-Wall>)
  string(REPLACE ";" "," layerskip_cuda_archs_text "${LAYERSKIP_CUDA_ARCHS}")
  target_compile_definitions(layerskip_cuda PRIVATE LAYERSKIP_CUDA_ARCHS_STRING="${layerskip_cuda_archs_text}")
  target_link_libraries(layerskip_cuda PUBLIC CUDA::cudart_static)
  target_link_libraries(layerskip_engine PUBLIC layerskip_cuda)
  target_compile_definitions(layerskip_engine PUBLIC LAYERSKIP_HAVE_CUDA=1)
  message(STATUS "layerskip: CUDA backend enabled (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${LAYERSKIP_CUDA_ARCHS})")
endif()
