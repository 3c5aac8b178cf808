# Installing lpk (`cmake --install build`) and its Debian packages (`cpack -G DEB` in the build
# directory, or tools/package.sh). Two packages:
#   lpk          lpk-proxy, kubectl-lpk, lpk-agent, the agent image archive (when built), bash and
#                zsh completions, lpk-proxy(1), lpk.yaml(5); its postinst grants
#                cap_net_bind_service to lpk-proxy.
#   lpk-kubesim  the local Kubernetes emulator. A package of its own: developers who connect to
#                a real cluster never run it, it needs root and crun, and it is built as tooling
#                (-O1), while lpk is what every user installs.
# Depends are computed by dpkg-shlibdeps from the libraries the binaries actually link.
include(GNUInstallDirs)
set(lpk_package_dir ${PROJECT_SOURCE_DIR}/tools/package)

install(TARGETS lpk-proxy lpk-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT lpk)
# kubectl finds the plugin as kubectl-lpk on PATH; lpk-proxy speaks as the plugin under that name.
install(CODE "file(CREATE_LINK lpk-proxy
                   \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/kubectl-lpk\"
                   SYMBOLIC)"
        COMPONENT lpk)
# The agent image, when the build made it (`agent-image` target: buildah, root): a cluster or a
# kubesim loads it from here (skopeo copy oci-archive:/usr/share/lpk/images/lpk-agent.tar ...).
install(FILES ${CMAKE_BINARY_DIR}/images/lpk-agent.tar OPTIONAL
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lpk/images COMPONENT lpk)
install(FILES ${lpk_package_dir}/completions/lpk-proxy.bash RENAME lpk-proxy
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT lpk)
install(FILES ${lpk_package_dir}/completions/_lpk-proxy
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions COMPONENT lpk)

# Man pages, with the version filled in and gzipped as Debian installs them.
set(lpk_man_outputs)
foreach(page lpk-proxy.1 lpk.yaml.5)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  configure_file(${lpk_package_dir}/${page} ${CMAKE_BINARY_DIR}/man/${page} @ONLY)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.gz
    COMMAND gzip -9n -c ${CMAKE_BINARY_DIR}/man/${page} > ${CMAKE_BINARY_DIR}/man/${page}.gz
    DEPENDS ${CMAKE_BINARY_DIR}/man/${page} VERBATIM)
  list(APPEND lpk_man_outputs ${CMAKE_BINARY_DIR}/man/${page}.gz)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT lpk)
endforeach()
add_custom_target(lpk-man ALL DEPENDS ${lpk_man_outputs})

if(TARGET lpk_kubesim)  # built here, not LPK_KUBESIM_EXECUTABLE's
  install(TARGETS lpk-kubesim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT kubesim)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lpk)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "lpk developers <lpk@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The build keeps line tables (RelWithDebInfo); the packages ship stripped binaries (a tenth the
# size).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lpk)
if(TARGET lpk_kubesim)
  list(APPEND CPACK_COMPONENTS_ALL kubesim)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)

set(CPACK_DEBIAN_LPK_PACKAGE_NAME lpk)
# setcap (postinst); the shared libraries' packages are added by dpkg-shlibdeps.
set(CPACK_DEBIAN_LPK_PACKAGE_DEPENDS "libcap2-bin")
set(CPACK_DEBIAN_LPK_PACKAGE_RECOMMENDS "kubernetes-client")
set(CPACK_DEBIAN_LPK_PACKAGE_SUGGESTS "lpk-kubesim")
# Each description's first line is the package's synopsis (no CPACK_PACKAGE_DESCRIPTION_SUMMARY:
# CPack would put that one line above both packages' descriptions).
set(CPACK_DEBIAN_LPK_DESCRIPTION
    "run one service of a Kubernetes application locally\n\
lpk-proxy replaces a service's container in its pods by lpk-agent and carries\n\
its traffic, environment, files and DNS names to a process on this machine;\n\
kubectl-lpk is the kubectl plugin.")
set(CPACK_DEBIAN_LPK_PACKAGE_CONTROL_EXTRA
    ${lpk_package_dir}/postinst ${lpk_package_dir}/prerm ${lpk_package_dir}/postrm)
set(CPACK_DEBIAN_LPK_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_DEBIAN_KUBESIM_PACKAGE_NAME lpk-kubesim)
set(CPACK_DEBIAN_KUBESIM_PACKAGE_RECOMMENDS "crun, kubernetes-client, iproute2")
set(CPACK_DEBIAN_KUBESIM_DESCRIPTION
    "local Kubernetes API emulator for lpk's tests and demo\n\
lpk-kubesim serves the Kubernetes API that kubectl and lpk use; its pods are\n\
processes (or OCI images run by crun) in real network namespaces. Needs root.")
include(CPack)
