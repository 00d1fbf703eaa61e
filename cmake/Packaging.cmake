# The svclb .deb (CPack's DEB generator; scripts/package.sh runs it): svclbd,
# svcctl (its install rule is in cli/), the systemd unit, /etc/default/svclbd,
# bash completion for svcctl, docs, and the maintainer scripts of
# deploy/debian/. The BPF programs are compiled into svclbd (a libbpf
# skeleton, cmake/BpfObject.cmake), so there is no object file to ship.
# Dependencies come from dpkg-shlibdeps (Debian package dpkg-dev).
include(GNUInstallDirs)

install(TARGETS svclbd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
# Debian 12 keeps packaged units in /lib/systemd/system.
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/svclbd.service DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/default DESTINATION /etc/default RENAME svclbd)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/completion/svcctl.bash
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions RENAME svcctl)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/deploy.md
              ${CMAKE_SOURCE_DIR}/docs/api.md ${CMAKE_SOURCE_DIR}/docs/kubernetes.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/svclb)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/kubernetes/rbac.yaml
              ${CMAKE_SOURCE_DIR}/deploy/kubernetes/daemonset.yaml
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/svclb/kubernetes)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME svclb)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR svclb)
set(CPACK_PACKAGE_CONTACT "svclb maintainers <svclb@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Kubernetes Service load balancing in eBPF (kube-proxy replacement)")
set(CPACK_PACKAGE_DESCRIPTION
    "svclbd keeps the desired Services and endpoints (from svcctl or a Kubernetes API server) and reconciles them into pinned BPF maps: ClusterIP in tc programs on pod interfaces, NodePort/LoadBalancer in XDP on node NICs, socket-level balancing for the node's own processes. svcctl is its kubectl-shaped CLI.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # svclb_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# As dh_strip: no debug info in the package (RelWithDebInfo builds carry it).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# conffiles: dpkg keeps the admin's /etc/default/svclbd across upgrades and
# removes it on purge only.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
    ${CMAKE_SOURCE_DIR}/deploy/debian/prerm ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
include(CPack)
