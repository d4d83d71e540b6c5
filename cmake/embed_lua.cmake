# embed_lua.cmake - the Redis scripts (src/redis/scripts/*.lua) compiled into the program.
#
# Included from CMakeLists.txt, it defines db_embed_lua(<target> <dir>): every <dir>/<name>.lua
# becomes a generated C source defining `const char db_lua_<name>[]` (declared in
# src/redis/scripts.h) and is added to <target>.  Run with -P, it is that generator: the array
# holds the file's bytes exactly, plus a terminating NUL, so what Redis runs is the file itself.
# Written in CMake alone, so the build needs no other tool.

if(CMAKE_SCRIPT_MODE_FILE)
  file(READ "${IN}" hex HEX)
  # 16 bytes a line, each as a character constant: '\xNN' is a char whatever its sign.
  string(REGEX REPLACE "(................................)" "\\1\n" hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  # The scripts are used as C strings: a NUL inside would cut one short without a word.
  if(bytes MATCHES "x00'")
    message(FATAL_ERROR "${IN}: contains a NUL byte")
  endif()
  file(WRITE "${OUT}.tmp"
       "/* Generated from ${IN} by cmake/embed_lua.cmake: edit the .lua file, not this. */\n"
       "const char ${NAME}[] = {\n${bytes}'\\0'};\n")
  # Rewritten only when different, so an unchanged script does not recompile.
  file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
  file(REMOVE "${OUT}.tmp")
  return()
endif()

set(DB_EMBED_LUA_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

function(db_embed_lua target dir)
  file(GLOB scripts CONFIGURE_DEPENDS ${dir}/*.lua)
  set(sources)
  foreach(lua ${scripts})
    get_filename_component(name ${lua} NAME_WE)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/lua/${name}.c)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -DIN=${lua} -DOUT=${out} -DNAME=db_lua_${name}
              -P ${DB_EMBED_LUA_SCRIPT}
      DEPENDS ${lua} ${DB_EMBED_LUA_SCRIPT}
      COMMENT "Embedding ${name}.lua" VERBATIM)
    list(APPEND sources ${out})
  endforeach()
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/lua)
  target_sources(${target} PRIVATE ${sources})
endfunction()
