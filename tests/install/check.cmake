# Builds and runs the consumer project in this directory against kinlet, the way a user would.
#
#   cmake -DMODE=package|subdirectory -DKINLET_SOURCE_DIR=... -DKINLET_BINARY_DIR=...
#         -DWORK_DIR=... [-DCONFIG=...] [-DCXX_COMPILER=...] [-DCXX_FLAGS=...]
#         [-DGENERATOR=...] [-DMAKE_PROGRAM=...] [-DWITH_GATEWAY=0|1] [-DWITH_CRYPTO=0|1]
#         -P check.cmake
#
# package:      `cmake --install` the kinlet build tree KINLET_BINARY_DIR into WORK_DIR/prefix,
#               then configure the consumer with find_package(kinlet CONFIG REQUIRED).
# subdirectory: configure the consumer with add_subdirectory(KINLET_SOURCE_DIR).
# Either way the consumer is then built and run; it must exit 0. WITH_CRYPTO: also build and run
# a consumer of kinlet::crypto (both modes); WITH_GATEWAY: of kinlet::gateway and kinlet::remote
# (package mode).
cmake_minimum_required(VERSION 3.20)

foreach(_var MODE KINLET_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check.cmake: -D${_var}=... is required")
  endif()
endforeach()
if(NOT MODE MATCHES "^(package|subdirectory)$")
  message(FATAL_ERROR "check.cmake: MODE must be package or subdirectory, not '${MODE}'")
endif()
if(MODE STREQUAL "package" AND (NOT DEFINED KINLET_BINARY_DIR OR KINLET_BINARY_DIR STREQUAL ""))
  message(FATAL_ERROR "check.cmake: MODE=package needs -DKINLET_BINARY_DIR=<kinlet build tree>")
endif()
if(NOT DEFINED CONFIG OR CONFIG STREQUAL "")
  set(CONFIG Release)
endif()

function(run_step what)
  message(STATUS "[install_consumer_${MODE}] ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[install_consumer_${MODE}] ${what} failed (${_rc})")
  endif()
endfunction()

get_filename_component(_consumer_src "${CMAKE_CURRENT_LIST_DIR}" ABSOLUTE)
set(_prefix "${WORK_DIR}/prefix")
set(_build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Same generator and compiler as the outer build; Ninja if the outer build gave none.
set(_configure_args -S "${_consumer_src}" -B "${_build}" "-DCMAKE_BUILD_TYPE=${CONFIG}")
if(DEFINED GENERATOR AND NOT GENERATOR STREQUAL "")
  list(APPEND _configure_args -G "${GENERATOR}")
  if(DEFINED MAKE_PROGRAM AND NOT MAKE_PROGRAM STREQUAL "")
    list(APPEND _configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
else()
  find_program(_ninja NAMES ninja ninja-build)
  if(_ninja)
    list(APPEND _configure_args -G Ninja "-DCMAKE_MAKE_PROGRAM=${_ninja}")
  endif()
endif()
if(DEFINED CXX_COMPILER AND NOT CXX_COMPILER STREQUAL "")
  list(APPEND _configure_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(DEFINED CXX_FLAGS AND NOT CXX_FLAGS STREQUAL "")
  list(APPEND _configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()

if(MODE STREQUAL "package")
  run_step("install kinlet" "${CMAKE_COMMAND}" --install "${KINLET_BINARY_DIR}"
    --prefix "${_prefix}" --config "${CONFIG}")
  foreach(_file include/kinlet/kinlet.hpp share/cmake/kinlet/kinletConfig.cmake
                share/cmake/kinlet/kinletConfigVersion.cmake share/cmake/kinlet/kinletTargets.cmake
                share/cmake/kinlet/Findxxhash.cmake)
    if(NOT EXISTS "${_prefix}/${_file}")
      message(FATAL_ERROR "[install_consumer_package] not installed: ${_prefix}/${_file}")
    endif()
  endforeach()
  if(WITH_CRYPTO)
    foreach(_file include/kinlet/crypto/aes_gcm.hpp include/kinlet/crypto/local_key_provider.hpp)
      if(NOT EXISTS "${_prefix}/${_file}")
        message(FATAL_ERROR "[install_consumer_package] not installed: ${_prefix}/${_file}")
      endif()
    endforeach()
  endif()
  if(WITH_GATEWAY)
    list(APPEND _configure_args -DKINLET_WITH_GATEWAY=ON)
  endif()
  list(APPEND _configure_args -DKINLET_CONSUME=package "-DCMAKE_PREFIX_PATH=${_prefix}"
    # Only the freshly installed copy may satisfy find_package(kinlet).
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
else()
  list(APPEND _configure_args -DKINLET_CONSUME=subdirectory
    "-DKINLET_SOURCE_DIR=${KINLET_SOURCE_DIR}")
endif()

if(WITH_CRYPTO)
  list(APPEND _configure_args -DKINLET_WITH_CRYPTO=ON)
endif()

run_step("configure consumer" "${CMAKE_COMMAND}" ${_configure_args})
run_step("build consumer" "${CMAKE_COMMAND}" --build "${_build}" --config "${CONFIG}" -j 2)

set(_exe "${_build}/kinlet_install_check")
if(NOT EXISTS "${_exe}" AND EXISTS "${_build}/${CONFIG}/kinlet_install_check")
  set(_exe "${_build}/${CONFIG}/kinlet_install_check")
endif()
run_step("run consumer" "${_exe}")
if(MODE STREQUAL "package" AND WITH_GATEWAY)
  set(_gateway_exe "${_build}/kinlet_gateway_install_check")
  if(NOT EXISTS "${_gateway_exe}" AND EXISTS "${_build}/${CONFIG}/kinlet_gateway_install_check")
    set(_gateway_exe "${_build}/${CONFIG}/kinlet_gateway_install_check")
  endif()
  run_step("run gateway consumer" "${_gateway_exe}")
  set(_remote_exe "${_build}/kinlet_remote_install_check")
  if(NOT EXISTS "${_remote_exe}" AND EXISTS "${_build}/${CONFIG}/kinlet_remote_install_check")
    set(_remote_exe "${_build}/${CONFIG}/kinlet_remote_install_check")
  endif()
  run_step("run remote consumer" "${_remote_exe}")
endif()
if(WITH_CRYPTO)
  set(_crypto_exe "${_build}/kinlet_crypto_install_check")
  if(NOT EXISTS "${_crypto_exe}" AND EXISTS "${_build}/${CONFIG}/kinlet_crypto_install_check")
    set(_crypto_exe "${_build}/${CONFIG}/kinlet_crypto_install_check")
  endif()
  run_step("run crypto consumer" "${_crypto_exe}")
endif()
message(STATUS "[install_consumer_${MODE}] OK")
