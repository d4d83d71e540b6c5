# embed_console.cmake - the agent console's files (console/*) compiled into the program.
#
# Included from CMakeLists.txt, it defines db_embed_console(<target> <dir>): every file of <dir>
# (html, js, css, svg) goes, byte for byte, into one generated C source that defines
# `const struct db_console_file db_console_files[]` (declared in src/console/files.h), ended
# by an entry whose name is NULL.  Run with -P, it is that generator.  CMake alone, so the
# build needs no other tool, and editing a file needs no step but the build.

if(CMAKE_SCRIPT_MODE_FILE)
  string(REPLACE "|" ";" files "${FILES}")
  set(out "/* Generated from ${DIR} by cmake/embed_console.cmake: edit those files, not this. */\n")
  string(APPEND out "#include \"console/files.h\"\n\n")
  set(table "")
  set(i 0)
  foreach(f ${files})
    file(READ "${DIR}/${f}" hex HEX)
    string(LENGTH "${hex}" n)
    math(EXPR n "${n} / 2")
    string(REGEX REPLACE "(................................)" "\\1\n" hex "${hex}")
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(APPEND out "static const unsigned char f${i}[] = {\n${bytes}0};\n")
    string(APPEND table "    {\"${f}\", f${i}, ${n}},\n")
    math(EXPR i "${i} + 1")
  endforeach()
  string(APPEND out "\nconst struct db_console_file db_console_files[] = {\n${table}    {0, 0, 0},\n};\n")
  file(WRITE "${OUT}.tmp" "${out}")
  file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
  file(REMOVE "${OUT}.tmp")
  return()
endif()

set(DB_EMBED_CONSOLE_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

function(db_embed_console target dir)
  file(GLOB paths CONFIGURE_DEPENDS ${dir}/*.html ${dir}/*.js ${dir}/*.css ${dir}/*.svg)
  set(names)
  foreach(p ${paths})
    get_filename_component(name ${p} NAME)
    list(APPEND names ${name})
  endforeach()
  list(SORT names)
  string(REPLACE ";" "|" joined "${names}")
  set(out ${CMAKE_CURRENT_BINARY_DIR}/console_files.c)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DDIR=${dir} -DFILES=${joined} -DOUT=${out}
            -P ${DB_EMBED_CONSOLE_SCRIPT}
    DEPENDS ${paths} ${DB_EMBED_CONSOLE_SCRIPT}
    COMMENT "Embedding the console's files" VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
