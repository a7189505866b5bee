# Findxxhash
# ----------
# Finds the xxHash library (https://github.com/Cyan4973/xxHash), which ships no CMake package.
#
# Imported target:
#   xxhash::xxhash   - the library, with xxhash.h on its include path
#
# Result variables:
#   xxhash_FOUND, xxhash_VERSION, xxhash_INCLUDE_DIRS, xxhash_LIBRARIES
#
# Cache variables (may be set to point at a specific installation):
#   xxhash_INCLUDE_DIR, xxhash_LIBRARY
#
# This file is installed beside kinletConfig.cmake so that find_package(kinlet) works.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_xxhash QUIET libxxhash)
endif()

find_path(xxhash_INCLUDE_DIR
  NAMES xxhash.h
  HINTS ${PC_xxhash_INCLUDE_DIRS})
find_library(xxhash_LIBRARY
  NAMES xxhash libxxhash xxHash
  HINTS ${PC_xxhash_LIBRARY_DIRS})

if(xxhash_INCLUDE_DIR AND EXISTS "${xxhash_INCLUDE_DIR}/xxhash.h")
  file(STRINGS "${xxhash_INCLUDE_DIR}/xxhash.h" _xxhash_version_lines
    REGEX "^#define XXH_VERSION_(MAJOR|MINOR|RELEASE)[ \t]+[0-9]+")
  foreach(_part MAJOR MINOR RELEASE)
    string(REGEX REPLACE ".*#define XXH_VERSION_${_part}[ \t]+([0-9]+).*" "\\1"
      _xxhash_${_part} "${_xxhash_version_lines}")
  endforeach()
  if(_xxhash_MAJOR MATCHES "^[0-9]+$" AND _xxhash_MINOR MATCHES "^[0-9]+$"
     AND _xxhash_RELEASE MATCHES "^[0-9]+$")
    set(xxhash_VERSION "${_xxhash_MAJOR}.${_xxhash_MINOR}.${_xxhash_RELEASE}")
  endif()
  unset(_xxhash_version_lines)
  unset(_xxhash_MAJOR)
  unset(_xxhash_MINOR)
  unset(_xxhash_RELEASE)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(xxhash
  REQUIRED_VARS xxhash_LIBRARY xxhash_INCLUDE_DIR
  VERSION_VAR xxhash_VERSION)

if(xxhash_FOUND)
  set(xxhash_INCLUDE_DIRS "${xxhash_INCLUDE_DIR}")
  set(xxhash_LIBRARIES "${xxhash_LIBRARY}")
  if(NOT TARGET xxhash::xxhash)
    add_library(xxhash::xxhash UNKNOWN IMPORTED)
    set_target_properties(xxhash::xxhash PROPERTIES
      IMPORTED_LOCATION "${xxhash_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${xxhash_INCLUDE_DIR}")
  endif()
endif()

mark_as_advanced(xxhash_INCLUDE_DIR xxhash_LIBRARY)
