# `cmake --install build [--prefix P]`: a relocatable tree (README "Install").
#   bin/flexgen                            finds everything below relative to itself (/proc/self/exe)
#   lib/flexgen/libflexgen_spm.so          the SentencePiece module (src/tokenizer/spm_tokenizer.cpp)
#   share/flexgen/data/{webqa,myriadlama}  the bundled datasets (src/engine/dataset.cpp find_data_dir)
#   share/doc/flexgen/                     README.md, LICENSE, docs/
#   share/bash-completion/completions/flexgen  the generated bash completion (src/cli/cmd_completion.cpp)
include(GNUInstallDirs)

set(FLEXGEN_INSTALL_LIBDIR lib/flexgen)  # not lib/<multiarch>: the binary looks at ../lib/flexgen

set_target_properties(flexgen PROPERTIES INSTALL_RPATH "$ORIGIN/../${FLEXGEN_INSTALL_LIBDIR}")
install(TARGETS flexgen RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET flexgen_spm)
  install(TARGETS flexgen_spm LIBRARY DESTINATION ${FLEXGEN_INSTALL_LIBDIR})
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/webqa ${PROJECT_SOURCE_DIR}/data/myriadlama
        DESTINATION ${CMAKE_INSTALL_DATADIR}/flexgen/data)
install(FILES ${PROJECT_SOURCE_DIR}/data/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/flexgen/data)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES ${FLEXGEN_BASH_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME flexgen)

# `make package` (cpack -G DEB): a Debian 12 package of the CPU build, installed under /usr. Its
# dependencies are the Debian packages of the libraries flexgen and libflexgen_spm.so link
# (readelf -d NEEDED + dpkg -S), so `apt install ./flexgen_*.deb` pulls what it needs.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flexgen)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "flexgen maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Paraphrase-ensemble question answering with LLaMA-family models (CPU build)")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libtorch1.13, libopenblas0-openmp | libblas3, libsentencepiece0, libpcre2-8-0, libpng16-16, libspdlog1.10, libfmt9, libgomp1, libc6, libgcc-s1, libstdc++6")
include(CPack)
