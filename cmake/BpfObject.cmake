# bpf_object(NAME SRC...): clang -target bpf for each SRC -> bpftool gen object
# (the static link) -> NAME.bpf.o -> bpftool gen skeleton -> NAME.skel.h,
# exposed as INTERFACE target NAME_skel. The object is embedded
# in the skeleton: no .o path is read at run time.
find_program(CLANG_BPF NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND uname -m OUTPUT_VARIABLE SVCLB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
if(SVCLB_ARCH STREQUAL "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(SVCLB_ARCH STREQUAL "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${SVCLB_ARCH})
endif()

function(bpf_object name)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  file(GLOB_RECURSE bpf_headers ${CMAKE_SOURCE_DIR}/bpf/*.h ${CMAKE_SOURCE_DIR}/maps/svclb_abi.h)
  set(parts)
  foreach(src ${ARGN})
    get_filename_component(base ${src} NAME_WE)
    set(part ${CMAKE_CURRENT_BINARY_DIR}/${name}.${base}.o)
    add_custom_command(
      OUTPUT ${part}
      COMMAND ${CLANG_BPF} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
              -Wall -Werror -Wno-unused-function
              -I${CMAKE_SOURCE_DIR} -I${CMAKE_SOURCE_DIR}/bpf
              -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
              -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${part}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src} ${bpf_headers}
      COMMENT "BPF ${src}")
    list(APPEND parts ${part})
  endforeach()
  # One object from all parts: maps and variables declared extern in one
  # file bind to their definition in another (libbpf's static linker).
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPFTOOL} gen object ${obj} ${parts}
    DEPENDS ${parts}
    COMMENT "BPF link ${name}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}")
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set_property(GLOBAL PROPERTY ${name}_BPF_OBJECT ${obj})
endfunction()
