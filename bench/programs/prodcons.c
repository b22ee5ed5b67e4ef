// prodcons: a multi-threaded producer/consumer, for bench/overhead.
//
// Two producer threads malloc messages of 32-2079 bytes, fill them, and pass them through one
// bounded queue (a ring of 1024 pointers under a mutex and two condition variables) to two
// consumer threads, which read and free them: every block is freed by another thread than the
// one that allocated it, the case that costs allocators and trackers most (remote frees). A
// consumer also answers one message in 16 (chosen by its content) with a short reply, allocated
// by the consumer and freed by a producer.
// Prints a checksum of every byte read, which no heap tracker may change (it is independent of
// the interleaving: a commutative sum).
//
// Usage: bench_prodcons [--scale X]   (X multiplies the messages; default 1: 2 M messages)
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_scale.h"

enum { kQueue = 1024, kProducers = 2, kConsumers = 2 };

typedef struct {
  uint32_t size;  // bytes of payload
  uint32_t seed;
  unsigned char payload[];
} Message;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  Message* slot[kQueue];
  uint64_t head, tail;  // head: next to take; tail: next to fill
} Queue;

static Queue work_queue = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};
static Queue reply_queue = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};
static uint64_t per_producer;

static void Put(Queue* q, Message* m) {
  pthread_mutex_lock(&q->mu);
  while (q->tail - q->head == kQueue) pthread_cond_wait(&q->not_full, &q->mu);
  q->slot[q->tail++ % kQueue] = m;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

// Takes one message; with wait == 0, returns NULL at once when the queue is empty.
static Message* Take(Queue* q, int wait) {
  pthread_mutex_lock(&q->mu);
  while (q->tail == q->head) {
    if (!wait) {
      pthread_mutex_unlock(&q->mu);
      return NULL;
    }
    pthread_cond_wait(&q->not_empty, &q->mu);
  }
  Message* m = q->slot[q->head++ % kQueue];
  pthread_cond_signal(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  return m;
}

static Message* NewMessage(uint32_t size, uint32_t seed) {
  Message* m = malloc(sizeof(Message) + size);
  if (!m) abort();
  m->size = size;
  m->seed = seed;
  for (uint32_t i = 0; i < size; i += 64) m->payload[i] = (unsigned char)(seed + i);
  m->payload[size - 1] = (unsigned char)seed;
  return m;
}

static uint64_t Read(const Message* m) {
  uint64_t sum = m->size;
  for (uint32_t i = 0; i < m->size; i += 64) sum += m->payload[i];
  return sum + m->payload[m->size - 1];
}

// Reads and frees what is left in a queue, without waiting.
static uint64_t Drain(Queue* q) {
  uint64_t sum = 0;
  Message* m;
  while ((m = Take(q, 0)) != NULL) {
    sum += Read(m);
    free(m);
  }
  return sum;
}

typedef struct {
  int id;
  uint64_t sum;
} Worker;

static void* Produce(void* arg) {
  Worker* w = arg;
  uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(w->id + 1);
  for (uint64_t i = 0; i < per_producer; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    Put(&work_queue, NewMessage(32 + (uint32_t)(x % 2048), (uint32_t)x));
    if (i % 64 == 0) {  // free the consumers' replies now and then
      Message* r;
      while ((r = Take(&reply_queue, 0)) != NULL) {
        w->sum += Read(r);
        free(r);
      }
    }
  }
  return NULL;
}

static void* Consume(void* arg) {
  Worker* w = arg;
  for (;;) {
    Message* m = Take(&work_queue, 1);
    if (m->size == 0) {
      free(m);
      break;
    }
    w->sum += Read(m);
    if (m->seed % 16 == 0) Put(&reply_queue, NewMessage(24, m->seed));
    free(m);
  }
  return NULL;
}

int main(int argc, char** argv) {
  const double scale = ParseScale(argc, argv);
  per_producer = (uint64_t)(1e6 * scale);
  pthread_t threads[kProducers + kConsumers];
  Worker workers[kProducers + kConsumers];
  for (int i = 0; i < kProducers + kConsumers; i++) {
    workers[i] = (Worker){i, 0};
    void* (*body)(void*) = i < kProducers ? Produce : Consume;
    if (pthread_create(&threads[i], NULL, body, &workers[i]) != 0) abort();
  }
  for (int i = 0; i < kProducers; i++) pthread_join(threads[i], NULL);
  // One end marker per consumer (a message of size 0), after everything produced.
  for (int i = 0; i < kConsumers; i++) {
    Message* end = malloc(sizeof(Message));
    if (!end) abort();
    end->size = 0;
    Put(&work_queue, end);
  }
  uint64_t check = 0;
  for (int i = kProducers; i < kProducers + kConsumers; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < kProducers + kConsumers; i++) check += workers[i].sum;
  check += Drain(&reply_queue);  // replies no producer took
  printf("prodcons: messages=%llu checksum=%016llx\n",
         (unsigned long long)(per_producer * kProducers), (unsigned long long)check);
  return 0;
}
