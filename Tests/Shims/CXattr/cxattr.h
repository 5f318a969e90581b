// Extended-attribute calls for the mount tests: <sys/xattr.h> is not part of Swift's Glibc module.
#include <sys/types.h>
#include <sys/xattr.h>
