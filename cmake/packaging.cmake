# `cmake --install`: headers, the library, the `clusterlock` command (when built), a CMake package
# (find_package(clusterlock) -> clusterlock::clusterlock) and a pkg-config file.
include(CMakePackageConfigHelpers)

set(config_dir "${CMAKE_INSTALL_LIBDIR}/cmake/clusterlock")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/clusterlock" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.hpp")
install(TARGETS clusterlock EXPORT clusterlockTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
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
