// SPDX-License-Identifier: GPL-2.0-only
/*
 * kho-replay oracle driver: replays an op script (kho_replay/replay/ops.py
 * grammar) with the kernel's own, unmodified mm/memblock.c, linked against
 * the stubs of the kernel's userspace harness tools/testing/memblock, and
 * prints the result as the JSON that `kho-replay run --format json` prints:
 *
 *   {"allocs": [...], "memory": [...], "reserved": [...], "messages": [...]}
 *
 * In the harness "physical" addresses are host virtual addresses (__va() is
 * the identity): allocations memset the blocks they return and array
 * doubling memcpy()s the region array to the address it found.  So the
 * driver maps one anonymous MAP_NORESERVE window at a fixed address
 * (WINDOW_BASE .. WINDOW_END) and refuses memory (add) outside it; every
 * address memblock can hand out is then real, writable memory of this
 * process, and untouched pages cost nothing.
 *
 * Kernel output (printk is printf, WARN/panic are fprintf(stderr)) is
 * captured into a memory stream and returned as "messages"; the JSON goes
 * to the original stdout.  A kernel panic() exits the process: an atexit
 * handler then prints {"panic": "<message>", "line": N} and the exit status
 * is 3.  Input errors print {"error": "<one line>"} and exit 2.
 *
 * Aliasing hazard: the dynamic region arrays live in the same window as the
 * blocks memblock hands out.  A stream that frees (or removes from reserved)
 * the memory under a live array lets a later allocation memset it or a
 * doubling memcpy over it: the kernel would corrupt itself, and the model,
 * which has no memory contents, cannot follow.  After every op the driver
 * checks that each dynamic array is still covered by reserved regions; if not
 * it prints {"hazard": "<what>", "line": N} and exits 4 before anything
 * could write there.
 *
 * Usage: driver [--stats] < script.ops   (--stats adds "stats": the arrays'
 *                                         final capacities)
 *        driver --window                 (prints "BASE END")
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/mman.h>

#include <linux/types.h>
#include <linux/seq_file.h>
#include <linux/memblock.h>

/* Physical window: [1 GiB, 64 GiB) so that layouts can straddle 4 GiB
 * (ARCH_LOW_ADDRESS_LIMIT) and still leave room for GiB-sized blocks. */
#define WINDOW_BASE 0x40000000ULL
#define WINDOW_END 0x1000000000ULL

/* Cap on captured kernel lines: enough to debug, bounded for 1e6-op runs. */
#define MAX_MESSAGES 200

/* Globals the harness stubs expect the test program to define. */
bool movable_node_enabled;
extern bool mirrored_kernelcore; /* defined by the harness's internal.h */

static FILE *json_out;    /* the real stdout */
static FILE *kmsg;        /* kernel printk/WARN/panic output */
static char *kmsg_buf;
static size_t kmsg_len;
static unsigned long lineno;
static int finished;

static unsigned long long *allocs;
static size_t nallocs, allocs_cap;

static void json_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The kernel's captured lines as a JSON list (at most MAX_MESSAGES). */
static void print_messages(FILE *f)
{
	size_t pos = 0, n = 0;

	fflush(kmsg);
	fputc('[', f);
	while (kmsg_buf && pos < kmsg_len && n < MAX_MESSAGES) {
		const char *nl = memchr(kmsg_buf + pos, '\n', kmsg_len - pos);
		size_t end = nl ? (size_t)(nl - kmsg_buf) : kmsg_len;

		if (end > pos) {
			if (n++)
				fputs(", ", f);
			json_string(f, kmsg_buf + pos, end - pos);
		}
		pos = end + 1;
	}
	fputc(']', f);
}

/* Last non-empty captured line: the panic() text. */
static void last_message(const char **s, size_t *n)
{
	size_t end;

	fflush(kmsg);
	*s = "";
	*n = 0;
	end = kmsg_len;
	while (end && kmsg_buf[end - 1] == '\n')
		end--;
	if (!end)
		return;
	size_t start = end;
	while (start && kmsg_buf[start - 1] != '\n')
		start--;
	*s = kmsg_buf + start;
	*n = end - start;
}

static void on_exit_handler(void)
{
	const char *s;
	size_t n;

	if (finished)
		return;
	/* Only panic() exits early (exit(-1) in tools/include/linux/panic.h). */
	last_message(&s, &n);
	fputs("{\"panic\": ", json_out);
	json_string(json_out, s, n);
	fprintf(json_out, ", \"line\": %lu}\n", lineno);
	fflush(json_out);
	_exit(3);
}

static void __attribute__((noreturn)) fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "line %lu: ", lineno);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	fputs("{\"error\": ", json_out);
	json_string(json_out, buf, strlen(buf));
	fputs("}\n", json_out);
	fflush(json_out);
	finished = 1;
	exit(2);
}

/* ---- op-script grammar ------------------------------------------------ */

#define MAX_WORDS 16

struct line {
	char *pos[MAX_WORDS];   /* positional words (after the keyword) */
	int npos;
	char *key[MAX_WORDS];   /* key=value options */
	char *val[MAX_WORDS];
	int nopt;
	int exact, reserved;    /* bare words */
};

static const char *opt(struct line *l, const char *k)
{
	for (int i = 0; i < l->nopt; i++)
		if (!strcmp(l->key[i], k))
			return l->val[i];
	return NULL;
}

/* decimal or 0x hex, optional leading '-', optional K/M/G/T suffix */
static long long number(const char *s)
{
	const char *p = s;
	unsigned long long v = 0, mul = 1;
	int neg = 0, digits = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		for (; *p; p++, digits++) {
			int d;

			if (*p >= '0' && *p <= '9')
				d = *p - '0';
			else if (*p >= 'a' && *p <= 'f')
				d = *p - 'a' + 10;
			else if (*p >= 'A' && *p <= 'F')
				d = *p - 'A' + 10;
			else
				break;
			if (v >> 60)
				fail("number out of range: %s", s);
			v = v * 16 + d;
		}
	} else {
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (v > (~0ULL - 9) / 10)
				fail("number out of range: %s", s);
			v = v * 10 + (*p - '0');
		}
	}
	switch (*p) {
	case 'k': case 'K': mul = 1ULL << 10; p++; break;
	case 'm': case 'M': mul = 1ULL << 20; p++; break;
	case 'g': case 'G': mul = 1ULL << 30; p++; break;
	case 't': case 'T': mul = 1ULL << 40; p++; break;
	}
	if (!digits || *p)
		fail("not a number: '%s'", s);
	if (mul > 1 && v > ~0ULL / mul)
		fail("number out of range: %s", s);
	v *= mul;
	return neg ? -(long long)v : (long long)v;
}

static u64 unum(const char *s)
{
	return (u64)number(s);
}

static const struct {
	const char *name;
	unsigned int value;
} flag_names[] = {
	{ "none", 0 },
	{ "hotplug", MEMBLOCK_HOTPLUG }, { "mirror", MEMBLOCK_MIRROR },
	{ "nomap", MEMBLOCK_NOMAP }, { "driver_managed", MEMBLOCK_DRIVER_MANAGED },
	{ "rsrv_noinit", MEMBLOCK_RSRV_NOINIT }, { "rsrv_kern", MEMBLOCK_RSRV_KERN },
	{ "kho_scratch", MEMBLOCK_KHO_SCRATCH },
	/* debugfs spellings */
	{ "drv_mng", MEMBLOCK_DRIVER_MANAGED }, { "rsv_nit", MEMBLOCK_RSRV_NOINIT },
	{ "rsv_kern", MEMBLOCK_RSRV_KERN },
	/* bit 0x80 is MEMBLOCK_RSRV_HUGETLB in 7.3 (unnamed in 7.2's header) */
	{ "rsrv_hugetlb", 0x80 }, { "rsv_hugetlb", 0x80 },
};

static unsigned int flags_of(const char *text)
{
	char buf[256], *save, *w;
	unsigned int v = 0;

	if (strlen(text) >= sizeof(buf))
		fail("flags too long");
	strcpy(buf, text);
	for (w = strtok_r(buf, "|", &save); w; w = strtok_r(NULL, "|", &save)) {
		size_t i;

		if (w[0] >= '0' && w[0] <= '9') {
			v |= (unsigned int)number(w);
			continue;
		}
		if (!strncasecmp(w, "memblock_", 9))
			w += 9;
		for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
			if (!strcasecmp(w, flag_names[i].name))
				break;
		if (i == sizeof(flag_names) / sizeof(flag_names[0]))
			fail("unknown or unsupported memblock flag '%s'", w);
		v |= flag_names[i].value;
	}
	return v;
}

static int boolean(const char *s)
{
	if (!strcmp(s, "1") || !strcmp(s, "on") || !strcmp(s, "true"))
		return 1;
	if (!strcmp(s, "0") || !strcmp(s, "off") || !strcmp(s, "false"))
		return 0;
	fail("expected 0 or 1, got '%s'", s);
}

static void need(struct line *l, const char *kw, int n)
{
	if (l->npos != n)
		fail("%s takes %d positional argument(s), got %d", kw, n, l->npos);
}

static void in_window(u64 base, u64 size)
{
	if (base < WINDOW_BASE || size > WINDOW_END - WINDOW_BASE ||
	    base - WINDOW_BASE > WINDOW_END - WINDOW_BASE - size)
		fail("memory [%#llx+%#llx) is outside the oracle window [%#llx, %#llx)",
		     (unsigned long long)base, (unsigned long long)size,
		     WINDOW_BASE, WINDOW_END);
}

static void record_alloc(u64 addr)
{
	if (nallocs == allocs_cap) {
		allocs_cap = allocs_cap ? 2 * allocs_cap : 1024;
		allocs = realloc(allocs, allocs_cap * sizeof(*allocs));
		if (!allocs)
			fail("out of memory");
	}
	allocs[nallocs++] = addr;
}

static void do_alloc(struct line *l)
{
	const char *api, *s;
	u64 size, align, min, max, r = 0;
	int nid;

	need(l, "alloc", 1);
	api = l->pos[0];
	if (!(s = opt(l, "size")))
		fail("alloc needs size=");
	size = unum(s);
	align = (s = opt(l, "align")) ? unum(s) : 0;
	min = (s = opt(l, "min")) ? unum(s) : 0;
	max = (s = opt(l, "max")) ? unum(s) : MEMBLOCK_ALLOC_ACCESSIBLE;
	nid = (s = opt(l, "nid")) ? (int)number(s) : NUMA_NO_NODE;

#define V(call) ((u64)(unsigned long)(call))
	if (!strcmp(api, "memblock_phys_alloc_range"))
		r = memblock_phys_alloc_range(size, align, min, max);
	else if (!strcmp(api, "memblock_phys_alloc"))
		r = memblock_phys_alloc(size, align);
	else if (!strcmp(api, "memblock_phys_alloc_try_nid"))
		r = memblock_phys_alloc_try_nid(size, align, nid);
	else if (!strcmp(api, "memblock_alloc_range_nid"))
		r = memblock_alloc_range_nid(size, align, min, max, nid, l->exact);
	else if (!strcmp(api, "memblock_alloc_try_nid"))
		r = V(memblock_alloc_try_nid(size, align, min, max, nid));
	else if (!strcmp(api, "memblock_alloc_try_nid_raw"))
		r = V(memblock_alloc_try_nid_raw(size, align, min, max, nid));
	else if (!strcmp(api, "memblock_alloc_exact_nid_raw"))
		r = V(memblock_alloc_exact_nid_raw(size, align, min, max, nid));
	else if (!strcmp(api, "memblock_alloc"))
		r = V(memblock_alloc(size, align));
	else if (!strcmp(api, "memblock_alloc_raw"))
		r = V(memblock_alloc_raw(size, align));
	else if (!strcmp(api, "memblock_alloc_from"))
		r = V(memblock_alloc_from(size, align, min));
	else if (!strcmp(api, "memblock_alloc_low"))
		r = V(memblock_alloc_low(size, align));
	else if (!strcmp(api, "memblock_alloc_node"))
		r = V(memblock_alloc_node(size, align, nid));
	else if (!strcmp(api, "memblock_alloc_or_panic"))
		r = V(memblock_alloc_or_panic(size, align));
	else if (!strcmp(api, "memblock_alloc_hugetlb"))
#ifdef HAVE_ALLOC_HUGETLB
		r = V(memblock_alloc_hugetlb(size, nid, l->exact));
#else
		fail("memblock_alloc_hugetlb does not exist in this kernel");
#endif
	else
		fail("unknown allocation API '%s'", api);
#undef V
	record_alloc(r);
}

/* mark/clear FLAG BASE SIZE: the kernel's own setter for that flag */
static void do_flag(struct line *l, int set)
{
	const char *kw = set ? "mark" : "clear";
	unsigned int flag;
	u64 base, size;
	int (*fn)(phys_addr_t, phys_addr_t) = NULL;

	need(l, kw, 3);
	flag = flags_of(l->pos[0]);
	base = unum(l->pos[1]);
	size = unum(l->pos[2]);
	switch (flag) {
	case MEMBLOCK_HOTPLUG:
		fn = set ? memblock_mark_hotplug : memblock_clear_hotplug;
		break;
	case MEMBLOCK_MIRROR:
		fn = set ? memblock_mark_mirror : NULL;
		break;
	case MEMBLOCK_NOMAP:
		fn = set ? memblock_mark_nomap : memblock_clear_nomap;
		break;
	case MEMBLOCK_KHO_SCRATCH:
		fn = set ? memblock_mark_kho_scratch : memblock_clear_kho_scratch;
		break;
	case MEMBLOCK_RSRV_NOINIT:
		fn = set ? memblock_reserved_mark_noinit : NULL;
		break;
	case MEMBLOCK_RSRV_KERN:
		fn = set ? memblock_reserved_mark_kern : NULL;
		break;
	}
	if (!fn)
		fail("the kernel has no function to %s flag '%s'", kw, l->pos[0]);
	fn(base, size);
}

static void do_line(char *text)
{
	struct line l = { 0 };
	char *words[MAX_WORDS], *p, *save, *kw;
	int nw = 0;

	if ((p = strchr(text, '#')))
		*p = '\0';
	if ((p = strstr(text, "caller=")))   /* caller= takes the rest of the line */
		*p = '\0';
	for (p = strtok_r(text, " \t\r\n", &save); p; p = strtok_r(NULL, " \t\r\n", &save)) {
		if (nw == MAX_WORDS)
			fail("too many words");
		words[nw++] = p;
	}
	if (!nw)
		return;
	kw = words[0];
	for (int i = 1; i < nw; i++) {
		char *eq = strchr(words[i], '=');

		if (eq) {
			*eq = '\0';
			l.key[l.nopt] = words[i];
			l.val[l.nopt++] = eq + 1;
		} else if (!strcmp(words[i], "exact")) {
			l.exact = 1;
		} else if (!strcmp(words[i], "reserved")) {
			l.reserved = 1;
		} else {
			l.pos[l.npos++] = words[i];
		}
	}

	if (!strcmp(kw, "add")) {
		const char *n = opt(&l, "nid"), *f = opt(&l, "flags");
		u64 base, size;

		need(&l, kw, 2);
		base = unum(l.pos[0]);
		size = unum(l.pos[1]);
		in_window(base, size);
		if (!n && (!f || !flags_of(f)))
			memblock_add(base, size);
		else
			memblock_add_node(base, size, n ? (int)number(n) : MAX_NUMNODES,
					  f ? flags_of(f) : 0);
	} else if (!strcmp(kw, "remove")) {
		need(&l, kw, 2);
		memblock_remove(unum(l.pos[0]), unum(l.pos[1]));
	} else if (!strcmp(kw, "reserve")) {
		const char *n = opt(&l, "nid"), *f = opt(&l, "flags");

		need(&l, kw, 2);
		if (!n && !f)
			memblock_reserve(unum(l.pos[0]), unum(l.pos[1]));
		else
			__memblock_reserve(unum(l.pos[0]), unum(l.pos[1]),
					   n ? (int)number(n) : NUMA_NO_NODE, f ? flags_of(f) : 0);
	} else if (!strcmp(kw, "reserve_kern")) {
		const char *n = opt(&l, "nid");

		need(&l, kw, 2);
		if (!n)
			memblock_reserve_kern(unum(l.pos[0]), unum(l.pos[1]));
		else
			__memblock_reserve(unum(l.pos[0]), unum(l.pos[1]), (int)number(n),
					   MEMBLOCK_RSRV_KERN);
	} else if (!strcmp(kw, "free")) {
		need(&l, kw, 2);
		memblock_phys_free(unum(l.pos[0]), unum(l.pos[1]));
	} else if (!strcmp(kw, "mark")) {
		do_flag(&l, 1);
	} else if (!strcmp(kw, "clear")) {
		do_flag(&l, 0);
	} else if (!strcmp(kw, "set_node")) {
		need(&l, kw, 3);
		memblock_set_node(unum(l.pos[0]), unum(l.pos[1]),
				  l.reserved ? &memblock.reserved : &memblock.memory,
				  (int)number(l.pos[2]));
	} else if (!strcmp(kw, "set_current_limit")) {
		need(&l, kw, 1);
		memblock_set_current_limit(unum(l.pos[0]));
	} else if (!strcmp(kw, "set_bottom_up")) {
		need(&l, kw, 1);
		memblock_set_bottom_up(boolean(l.pos[0]));
	} else if (!strcmp(kw, "allow_resize")) {
		need(&l, kw, 0);
		memblock_allow_resize();
	} else if (!strcmp(kw, "kho_scratch_only")) {
		need(&l, kw, 1);
		if (boolean(l.pos[0]))
			memblock_set_kho_scratch_only();
		else
			memblock_clear_kho_scratch_only();
	} else if (!strcmp(kw, "movable_node")) {
		need(&l, kw, 1);
		movable_node_enabled = boolean(l.pos[0]);
	} else if (!strcmp(kw, "mirrored_kernelcore")) {
		need(&l, kw, 1);
		mirrored_kernelcore = boolean(l.pos[0]);
	} else if (!strcmp(kw, "trim_memory")) {
		need(&l, kw, 1);
		memblock_trim_memory(unum(l.pos[0]));
	} else if (!strcmp(kw, "enforce_memory_limit")) {
		need(&l, kw, 1);
		memblock_enforce_memory_limit(unum(l.pos[0]));
	} else if (!strcmp(kw, "cap_memory_range")) {
		need(&l, kw, 2);
		memblock_cap_memory_range(unum(l.pos[0]), unum(l.pos[1]));
	} else if (!strcmp(kw, "phase")) {
		/* strategy hook points: nothing for the kernel to do */
	} else if (!strcmp(kw, "alloc")) {
		do_alloc(&l);
	} else {
		fail("unknown op '%s'", kw);
	}
}

static struct memblock_region *static_memory_array, *static_reserved_array;

/* Is [base, base + size) entirely covered by (adjacent) reserved regions? */
static int reserved_covers(u64 base, u64 size)
{
	struct memblock_type *t = &memblock.reserved;
	unsigned long lo = 0, hi = t->cnt;
	u64 end = base + size;

	while (lo < hi) {	/* first region whose end is above base */
		unsigned long mid = lo + (hi - lo) / 2;

		if (t->regions[mid].base + t->regions[mid].size <= base)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < t->cnt && base < end; lo++) {
		struct memblock_region *r = &t->regions[lo];

		if (r->base > base)
			return 0;
		base = r->base + r->size;
	}
	return base >= end;
}

static void check_arrays(void)
{
	struct memblock_type *types[] = { &memblock.memory, &memblock.reserved };
	struct memblock_region *statics[] = { static_memory_array, static_reserved_array };

	for (int i = 0; i < 2; i++) {
		struct memblock_type *t = types[i];
		u64 base = (u64)(unsigned long)t->regions;
		/* what memblock_double_array() reserved for it */
		u64 size = PAGE_ALIGN(t->max * sizeof(struct memblock_region));

		if (t->regions == statics[i] || reserved_covers(base, size))
			continue;
		fputs("{\"hazard\": ", json_out);
		char buf[200];
		snprintf(buf, sizeof(buf), "the memory of memblock's %s array [%#llx+%#llx) is no longer reserved",
			 t->name, (unsigned long long)base, (unsigned long long)size);
		json_string(json_out, buf, strlen(buf));
		fprintf(json_out, ", \"line\": %lu}\n", lineno);
		fflush(json_out);
		finished = 1;
		exit(4);
	}
}

static void print_type(FILE *f, struct memblock_type *type)
{
	fputc('[', f);
	for (unsigned long i = 0; i < type->cnt; i++) {
		struct memblock_region *r = &type->regions[i];

		fprintf(f, "%s{\"base\": \"0x%llx\", \"size\": \"0x%llx\", \"flags\": \"0x%x\", \"nid\": %d}",
			i ? ", " : "", (unsigned long long)r->base,
			(unsigned long long)r->size, (unsigned int)r->flags,
			memblock_get_region_node(r));
	}
	fputc(']', f);
}

static void print_hex(FILE *f, u64 v)
{
	/* hex() style: 0x0 for zero, no padding (%#llx prints "0" for zero) */
	fprintf(f, "\"0x%llx\"", (unsigned long long)v);
}

int main(int argc, char **argv)
{
	char *buf = NULL;
	size_t cap = 0;
	int stats = argc == 2 && !strcmp(argv[1], "--stats");
	void *w;

	if (argc == 2 && !strcmp(argv[1], "--window")) {
		printf("%#llx %#llx\n", WINDOW_BASE, WINDOW_END);
		return 0;
	}
	json_out = fdopen(dup(STDOUT_FILENO), "w");
	kmsg = open_memstream(&kmsg_buf, &kmsg_len);
	if (!json_out || !kmsg)
		return 1;
	/* printk is printf and WARN/panic write to stderr in the harness */
	stdout = kmsg;
	stderr = kmsg;
	atexit(on_exit_handler);

	w = mmap((void *)WINDOW_BASE, WINDOW_END - WINDOW_BASE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (w != (void *)WINDOW_BASE)
		fail("cannot map the oracle window at %#llx: %s", WINDOW_BASE, strerror(errno));

	static_memory_array = memblock.memory.regions;
	static_reserved_array = memblock.reserved.regions;
	while (getline(&buf, &cap, stdin) != -1) {
		lineno++;
		do_line(buf);
		check_arrays();
	}

	fputs("{\"allocs\": [", json_out);
	for (size_t i = 0; i < nallocs; i++) {
		if (i)
			fputs(", ", json_out);
		if (allocs[i])
			print_hex(json_out, allocs[i]);
		else
			fputs("null", json_out);
	}
	fputs("], \"memory\": ", json_out);
	print_type(json_out, &memblock.memory);
	fputs(", \"reserved\": ", json_out);
	print_type(json_out, &memblock.reserved);
	fputs(", \"messages\": ", json_out);
	print_messages(json_out);
	if (stats)
		fprintf(json_out, ", \"stats\": {\"memory_max\": %lu, \"reserved_max\": %lu}",
			memblock.memory.max, memblock.reserved.max);
	fputs("}\n", json_out);
	finished = 1;
	fflush(json_out);
	return 0;
}
