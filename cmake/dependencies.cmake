# The libraries strata links besides libc and pthreads, as imported
# targets: for libstrata PCRE2 (8-bit code units, for the BPE
# pre-tokenizers) as strata_pcre2 and jansson (JSON: chat messages and
# tools for the chat templates; the server's requests and replies) as
# strata_jansson; for the server (server/, `strata serve`) libmicrohttpd
# (HTTP) as strata_microhttpd.
#
# pkg-config is asked first. Where it is missing or does not know the module
# (a machine without a package manager, with the packages unpacked into a
# folder), the header and library are looked up by name in the usual places
# and under CMAKE_PREFIX_PATH, so
#
#   cmake -S . -B build -DCMAKE_PREFIX_PATH=/path/to/unpacked/usr
#
# builds against such a folder (the library's directory goes into the
# binaries' RPATH, so they also run from there).

find_package(PkgConfig QUIET)

function(strata_find_dependency target module header library package)
  if(PKG_CONFIG_FOUND)
    # NO_CMAKE_PATH: the .pc files of unpacked packages name /usr as their
    # prefix, so those under CMAKE_PREFIX_PATH are left to the search below
    pkg_check_modules(${target}_pc QUIET IMPORTED_TARGET GLOBAL NO_CMAKE_PATH ${module})
    if(${target}_pc_FOUND)
      add_library(${target} INTERFACE IMPORTED GLOBAL)
      target_link_libraries(${target} INTERFACE PkgConfig::${target}_pc)
      return()
    endif()
  endif()
  find_path(${target}_INCLUDE_DIR ${header})
  find_library(${target}_LIBRARY ${library})
  if(NOT ${target}_INCLUDE_DIR OR NOT ${target}_LIBRARY)
    message(FATAL_ERROR
      "${module} not found (neither pkg-config nor a search for ${header} and lib${library} found it): "
      "install ${package} (scripts/setup.sh does), or set CMAKE_PREFIX_PATH to a prefix that holds "
      "include/${header} and lib${library}")
  endif()
  message(STATUS "${module}: ${${target}_LIBRARY} (found without pkg-config)")
  add_library(${target} INTERFACE IMPORTED GLOBAL)
  target_include_directories(${target} INTERFACE ${${target}_INCLUDE_DIR})
  target_link_libraries(${target} INTERFACE ${${target}_LIBRARY})
endfunction()

strata_find_dependency(strata_pcre2 libpcre2-8 pcre2.h pcre2-8 libpcre2-dev)
strata_find_dependency(strata_jansson jansson jansson.h jansson libjansson-dev)
strata_find_dependency(strata_microhttpd libmicrohttpd microhttpd.h microhttpd libmicrohttpd-dev)
