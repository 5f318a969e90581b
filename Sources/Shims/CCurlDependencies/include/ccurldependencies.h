// CCurlDependencies has nothing to call: it changes what libraries that libcurl loads do when
// they load (see gnutls.c). Linking it into an executable is all it takes.
#ifndef CCURLDEPENDENCIES_H
#define CCURLDEPENDENCIES_H
#endif
