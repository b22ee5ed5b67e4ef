# Fails when a file of a report/ stage includes a header of a stage it does not link. Link
# dependencies between the stages are declared once, in report/CMakeLists.txt; this turns them
# into a rule on #include lines too, which the linker alone cannot see (a header-only type of a
# stage above would link). Run at configure time (included by report/CMakeLists.txt) and by the
# report_layering test:
#   cmake -DREPORT_DIR=<path of report/> "-DSTAGE_REACH=|<stage>:<reachable>,...|..." -P <this>
# where each entry names a stage and every stage it may include (itself and all below it).

cmake_policy(SET CMP0057 NEW)  # if(IN_LIST), also when run as a script

string(REPLACE "|" ";" entries "${STAGE_REACH}")
foreach(entry IN LISTS entries)
  if(entry STREQUAL "")
    continue()
  endif()
  string(REPLACE ":" ";" parts "${entry}")
  list(GET parts 0 stage)
  list(GET parts 1 reach)
  string(REPLACE "," ";" reach "${reach}")
  file(GLOB files "${REPORT_DIR}/${stage}/*.h" "${REPORT_DIR}/${stage}/*.cc")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "^#include \"report/[a-z_]+/")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^#include \"report/([a-z_]+)/.*" "\\1" included "${line}")
      if(NOT included IN_LIST reach)
        message(FATAL_ERROR "${file} includes a header of report/${included}/, a stage that "
                            "report/${stage}/ does not depend on (see report/CMakeLists.txt)")
      endif()
    endforeach()
  endforeach()
endforeach()
