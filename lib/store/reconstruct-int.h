/* reconstruct-int.h: what reconstruct-mailbox.c and reconstruct-list.c share. */
#ifndef COFFER_STORE_RECONSTRUCT_INT_H
#define COFFER_STORE_RECONSTRUCT_INT_H
#include <stdint.h>

/* recon_message_uid: the uid of a message file name "<uid>.", or 0 (reconstruct-mailbox.c). */
uint32_t recon_message_uid(const char *fn);

#endif
