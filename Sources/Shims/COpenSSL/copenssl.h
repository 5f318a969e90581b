// COpenSSL: the OpenSSL 3 headers the PKI module uses, plus wrappers for what Swift cannot import.
//
// Swift imports OpenSSL's functions and simple constant macros directly. What it cannot import
// are function-like macros (the type-safe stack accessors such as sk_PKCS7_num are macros over
// OPENSSL_sk_* with inline type checks; BIO_get_mem_data is a BIO_ctrl shorthand) and constants
// defined as expressions over other macros (EVP_PKEY_KEYPAIR). Each wrapper below exists for one
// of those reasons and does nothing else; the logic stays in Swift.
#ifndef COPENSSL_H
#define COPENSSL_H

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// MARK: Constants built from nested macro expressions, which Swift does not import

static const int copenssl_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;
static const int copenssl_EVP_PKEY_KEYPAIR = EVP_PKEY_KEYPAIR;
static const unsigned long copenssl_XN_FLAG_RFC2253 = XN_FLAG_RFC2253;

// MARK: Memory BIOs

// BIO_get_mem_data is a macro over BIO_ctrl(BIO_CTRL_INFO). Returns the byte count; *data points
// into the BIO's buffer and stays valid until the BIO is written to or freed.
static inline long copenssl_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

// MARK: Stacks (sk_TYPE_* are function-like macros)

static inline int copenssl_sk_PKCS7_num(const STACK_OF(PKCS7) *stack) {
    return sk_PKCS7_num(stack);
}

static inline PKCS7 *copenssl_sk_PKCS7_value(const STACK_OF(PKCS7) *stack, int index) {
    return sk_PKCS7_value(stack, index);
}

// Frees the stack and every PKCS7 in it.
static inline void copenssl_sk_PKCS7_pop_free(STACK_OF(PKCS7) *stack) {
    sk_PKCS7_pop_free(stack, PKCS7_free);
}

static inline int copenssl_sk_PKCS12_SAFEBAG_num(const STACK_OF(PKCS12_SAFEBAG) *stack) {
    return sk_PKCS12_SAFEBAG_num(stack);
}

static inline PKCS12_SAFEBAG *copenssl_sk_PKCS12_SAFEBAG_value(const STACK_OF(PKCS12_SAFEBAG) *stack,
                                                               int index) {
    return sk_PKCS12_SAFEBAG_value(stack, index);
}

// Frees the stack and every bag in it.
static inline void copenssl_sk_PKCS12_SAFEBAG_pop_free(STACK_OF(PKCS12_SAFEBAG) *stack) {
    sk_PKCS12_SAFEBAG_pop_free(stack, PKCS12_SAFEBAG_free);
}

// GENERAL_NAMES is STACK_OF(GENERAL_NAME); GENERAL_NAMES_free (a real function) frees it whole.
static inline GENERAL_NAMES *copenssl_sk_GENERAL_NAME_new_null(void) {
    return sk_GENERAL_NAME_new_null();
}

// On success the stack owns the name.
static inline int copenssl_sk_GENERAL_NAME_push(GENERAL_NAMES *stack, GENERAL_NAME *name) {
    return sk_GENERAL_NAME_push(stack, name);
}

static inline int copenssl_sk_GENERAL_NAME_num(const GENERAL_NAMES *stack) {
    return sk_GENERAL_NAME_num(stack);
}

static inline GENERAL_NAME *copenssl_sk_GENERAL_NAME_value(const GENERAL_NAMES *stack, int index) {
    return sk_GENERAL_NAME_value(stack, index);
}

// EXTENDED_KEY_USAGE is STACK_OF(ASN1_OBJECT); EXTENDED_KEY_USAGE_free frees it whole.
static inline EXTENDED_KEY_USAGE *copenssl_sk_ASN1_OBJECT_new_null(void) {
    return sk_ASN1_OBJECT_new_null();
}

static inline int copenssl_sk_ASN1_OBJECT_num(const EXTENDED_KEY_USAGE *stack) {
    return sk_ASN1_OBJECT_num(stack);
}

static inline ASN1_OBJECT *copenssl_sk_ASN1_OBJECT_value(const EXTENDED_KEY_USAGE *stack, int index) {
    return sk_ASN1_OBJECT_value(stack, index);
}

// On success the stack owns the object.
static inline int copenssl_sk_ASN1_OBJECT_push(EXTENDED_KEY_USAGE *stack, ASN1_OBJECT *object) {
    return sk_ASN1_OBJECT_push(stack, object);
}

// A certificate request's extensions: X509V3_add1_i2d makes the stack; this frees it whole.
static inline void copenssl_sk_X509_EXTENSION_pop_free(STACK_OF(X509_EXTENSION) *stack) {
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
}

#endif
