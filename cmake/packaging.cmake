# `cmake --install`: headers, the library, the `clusterlock` command (when built), a CMake package
# (find_package(clusterlock) -> clusterlock::clusterlock, and clusterlock::testing when the kit is built) and a
# pkg-config file.
include(CMakePackageConfigHelpers)

set(config_dir "${CMAKE_INSTALL_LIBDIR}/cmake/clusterlock")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/clusterlock" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.hpp")
install(TARGETS clusterlock EXPORT clusterlockTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
# The testing kit, in the same export set: find_package(clusterlock) gives clusterlock::testing too.
if(TARGET clusterlock_testing)
  install(TARGETS clusterlock_testing EXPORT clusterlockTargets
          ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
          LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
          RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
endif()
if(TARGET clusterlock_cli)
  install(TARGETS clusterlock_cli RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
endif()

install(EXPORT clusterlockTargets NAMESPACE clusterlock:: DESTINATION "${config_dir}")
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/clusterlockConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/clusterlockConfig.cmake" INSTALL_DESTINATION "${config_dir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/clusterlockConfigVersion.cmake"
                                 COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/clusterlockConfig.cmake" "${PROJECT_BINARY_DIR}/clusterlockConfigVersion.cmake"
        DESTINATION "${config_dir}")

# pkg-config. Relative to the .pc file itself, so `cmake --install --prefix ANYWHERE` works.
set(pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CLUSTERLOCK_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(CLUSTERLOCK_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(CLUSTERLOCK_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH pc_to_prefix "/prefix/${pc_dir}" "/prefix")
  string(REGEX REPLACE "/$" "" pc_to_prefix "${pc_to_prefix}")
  set(CLUSTERLOCK_PC_PREFIX "\${pcfiledir}/${pc_to_prefix}")
  set(CLUSTERLOCK_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(CLUSTERLOCK_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# A static library needs its dependencies on the consumer's link line; a shared one brings them along.
set(pc_dependency_libs "-lboost_json -lboost_url -pthread")
if(BUILD_SHARED_LIBS)
  set(CLUSTERLOCK_PC_REQUIRES "Requires.private")
  set(CLUSTERLOCK_PC_LIBS "")
  set(CLUSTERLOCK_PC_LIBS_PRIVATE "Libs.private: ${pc_dependency_libs}")
else()
  set(CLUSTERLOCK_PC_REQUIRES "Requires")
  set(CLUSTERLOCK_PC_LIBS "${pc_dependency_libs}")
  set(CLUSTERLOCK_PC_LIBS_PRIVATE "")
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/clusterlock.pc.in" "${PROJECT_BINARY_DIR}/clusterlock.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/clusterlock.pc" DESTINATION "${pc_dir}")

# The command's man page, made from docs/cli.md with go-md2man (Debian's go-md2man package; scripts/setup.sh
# installs it). Without the tool there is no man page, and a note says so.
if(TARGET clusterlock_cli)
  find_program(CLUSTERLOCK_GO_MD2MAN go-md2man)
  if(CLUSTERLOCK_GO_MD2MAN)
    set(man_page "${PROJECT_BINARY_DIR}/clusterlock.1")
    add_custom_command(
      OUTPUT "${man_page}" "${man_page}.gz"
      COMMAND "${CMAKE_COMMAND}" -DIN=${PROJECT_SOURCE_DIR}/docs/cli.md -DOUT=${man_page}
              -DGO_MD2MAN=${CLUSTERLOCK_GO_MD2MAN} -DVERSION=${PROJECT_VERSION}
              -P "${CMAKE_CURRENT_LIST_DIR}/man_page.cmake"
      DEPENDS "${PROJECT_SOURCE_DIR}/docs/cli.md" "${CMAKE_CURRENT_LIST_DIR}/man_page.cmake"
      COMMENT "clusterlock.1 from docs/cli.md")
    add_custom_target(clusterlock_man ALL DEPENDS "${man_page}" "${man_page}.gz")
    install(FILES "${man_page}.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
  else()
    message(STATUS "go-md2man not found: no man page for the clusterlock command")
  endif()
endif()

# `cpack -G DEB` in the build directory: one Debian package with all of the above, for the Debian release it was
# built on (the Boost packages it depends on are the ones it was built with).
set(CPACK_PACKAGE_NAME clusterlock)
set(CPACK_PACKAGE_VENDOR clusterlock)
set(CPACK_PACKAGE_CONTACT "clusterlock developers <clusterlock@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "cluster-wide lock (leader election) for C++20 programs, backed by etcd")
set(CPACK_PACKAGE_DESCRIPTION "The clusterlock library (static, with its headers, CMake package and pkg-config file)
and the clusterlock command (run a command while holding a lock, status, watch).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_STRIP_FILES ON)  # the command; CMake leaves the static library alone
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://etcd.io")
# The command's run-time libraries, from dpkg-shlibdeps (dpkg-dev); the library's users need the headers and
# libraries it was built against.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(boost_dev_suffix "${Boost_VERSION_MAJOR}.${Boost_VERSION_MINOR}-dev")
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libboost${boost_dev_suffix}, libboost-json${boost_dev_suffix}, libboost-url${boost_dev_suffix}, libssl-dev")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "etcd-server, etcd-client, cmake, pkg-config")
include(CPack)
