# cmake -P script: install demix to a scratch prefix; build and run a consumer with find_package
# and one with pkg-config; then move the prefix and run the installed CLI's deblend with its
# default (shipped) model, and the pkg-config consumer built against the moved prefix.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run(${CMAKE_COMMAND} --install ${DEMIX_BUILD_DIR} --prefix ${prefix})
# Through the environment (':'-separated), since a ';' list would be split into several arguments.
string(REPLACE ";" ":" search_path "${prefix};${EXTRA_PREFIX_PATH}")
set(ENV{CMAKE_PREFIX_PATH} "${search_path}")
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer ${WORK_DIR}/consumer.fits)

# Moved: nothing of the installation may point back to where it was installed.
set(moved ${WORK_DIR}/moved)
file(RENAME ${prefix} ${moved})
if(NOT PKG_CONFIG OR NOT CXX)
  message(STATUS "pkg-config or the C++ compiler not given: demix.pc not tested")
else()
  file(GLOB_RECURSE pc_file ${moved}/*/demix.pc)
  if(NOT pc_file)
    message(FATAL_ERROR "no demix.pc installed under ${moved}")
  endif()
  get_filename_component(pc_dir ${pc_file} DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs demix RESULT_VARIABLE rc
    OUTPUT_VARIABLE flags ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT flags MATCHES "-I${moved}/[^ ]*include" OR NOT flags MATCHES "-ldemix")
    message(FATAL_ERROR "pkg-config --cflags --libs demix (${rc}): '${flags}' ${err}")
  endif()
  message(STATUS "pkg-config --cflags --libs demix: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${CXX} -std=c++20 ${CONSUMER_SOURCE_DIR}/main.cpp ${flags} -o ${WORK_DIR}/consumer_pc)
  execute_process(COMMAND ${WORK_DIR}/consumer_pc ${WORK_DIR}/consumer_pc.fits
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "shipped model: ${moved}/share/demix/models/")
    message(FATAL_ERROR "the pkg-config consumer (${rc}) did not find the moved model:\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endif()
if(EXISTS ${moved}/bin/demix)
  # A one-galaxy blend from the simulator, deblended with the default model, which must be the
  # moved installation's (not the source tree's; the CLI says which it loaded).
  run(${moved}/bin/demix simulate blends -n 1 --seed 5 --min-galaxies 1 --max-galaxies 1
      -o ${WORK_DIR}/blend.fits --csv ${WORK_DIR}/truth.csv)
  execute_process(COMMAND ${moved}/bin/demix deblend ${WORK_DIR}/blend.fits
      --catalog ${WORK_DIR}/truth.csv -o ${WORK_DIR}/deblended
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT err MATCHES "${moved}/share/demix/models/madness-lsst.dmx")
    message(FATAL_ERROR "deblend from the moved installation (${rc}) did not load "
      "${moved}/share/demix/models/madness-lsst.dmx:\n${out}\n${err}")
  endif()
  message(STATUS "moved installation: deblend loaded ${moved}/share/demix/models/madness-lsst.dmx")
endif()
