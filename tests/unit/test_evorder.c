/* test_evorder.c: pg_snapshot parsing and which event ids may be delivered, gap by gap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "evorder.h"

static struct crm_snap
snap(const char *text)
{
    struct crm_snap s;

    assert_int_equal(crm_snap_parse(text, &s), 0);
    return s;
}

static void
test_snap_parse(void **state)
{
    struct crm_snap s = snap("10:15:10,12,14");

    (void)state;
    assert_true(s.xmin == 10 && s.xmax == 15 && s.nxip == 3);
    assert_true(s.xip[0] == 10 && s.xip[1] == 12 && s.xip[2] == 14);
    assert_true(crm_snap_ended(&s, 9));
    assert_false(crm_snap_ended(&s, 10));
    assert_true(crm_snap_ended(&s, 11));
    assert_false(crm_snap_ended(&s, 14));
    assert_false(crm_snap_ended(&s, 15)); /* not yet begun when the snapshot was taken */
    crm_snap_free(&s);
    s = snap("7:7:");
    assert_int_equal(s.nxip, 0);
    crm_snap_free(&s);
    assert_int_equal(crm_snap_parse("", &s), -1);
    assert_int_equal(crm_snap_parse("1:2", &s), -1);
    assert_int_equal(crm_snap_parse("1:2:3,", &s), -1);
    assert_int_equal(crm_snap_parse("1:2:x", &s), -1);
    assert_int_equal(crm_snap_parse("1:2:3,,4", &s), -1);
    assert_int_equal(crm_snap_parse("99999999999999999999:2:", &s), -1);
}

static void
test_contiguous_ids_go_at_once(void **state)
{
    struct crm_evorder o = {.cursor = 4};
    struct crm_snap s = snap("100:105:100,101"); /* busy, but no gap */
    const int64_t ids[] = {5, 6, 7};
    int again;

    (void)state;
    assert_int_equal(crm_evorder_next(&o, &s, ids, 3, &again), 3);
    assert_int_equal(o.cursor, 7);
    assert_int_equal(again, 0);
    crm_snap_free(&s);
    crm_evorder_free(&o);
}

static void
test_gap_waits_for_the_transactions_in_progress(void **state)
{
    struct crm_evorder o = {.cursor = 4};
    struct crm_snap s1 = snap("100:105:100,103"), s2 = snap("101:106:103"),
                    s3 = snap("106:108:106");
    const int64_t first[] = {5, 7, 8}, later[] = {6, 7, 8, 9, 11};
    int again;

    (void)state;
    s1.next = 106;
    /* 6 is missing: 5 goes, 7 and 8 wait for 100 and 103 (one of them may hold 6). */
    assert_int_equal(crm_evorder_next(&o, &s1, first, 3, &again), 1);
    assert_int_equal(o.cursor, 5);
    assert_int_equal(again, 1);
    /* 100 ended, 103 runs: 6 has come, so 6..9 follow the cursor with no gap; 11 waits. */
    assert_int_equal(crm_evorder_next(&o, &s2, later, 5, &again), 4);
    assert_int_equal(o.cursor, 9);
    assert_int_equal(again, 1);
    /* 103 ended, 106 (assigned after s1's next) does not count. 10 is missing, and this read
     * has no next: nothing new waits, but the caller must read again. */
    assert_int_equal(crm_evorder_next(&o, &s3, later + 4, 1, &again), 0);
    assert_int_equal(o.cursor, 9);
    assert_int_equal(again, 1);
    assert_false(o.barrier);
    s3.next = 109;
    assert_int_equal(crm_evorder_next(&o, &s3, later + 4, 1, &again), 0);
    assert_true(o.barrier && o.horizon == 11 && again == 1);
    crm_snap_free(&s1);
    crm_snap_free(&s2);
    crm_snap_free(&s3);
    crm_evorder_free(&o);
}

static void
test_running_xid_at_or_above_xmax_still_holds_a_gap(void **state)
{
    /* A snapshot lists no running xid at or above its xmax (latest completed + 1): xid 1000
     * took id 636, 637 committed with a smaller xid, and the snapshot shows nothing running. */
    struct crm_evorder o = {.cursor = 635};
    struct crm_snap s1 = snap("1000:1000:"), s2 = snap("1000:1003:1000"), s3 = snap("1003:1003:");
    const int64_t seen[] = {637}, both[] = {636, 637};
    int again;

    (void)state;
    s1.next = 1002;
    assert_int_equal(crm_evorder_next(&o, &s1, seen, 1, &again), 0);
    assert_true(again && o.barrier);
    assert_int_equal(crm_evorder_next(&o, &s2, seen, 1, &again), 0); /* 1000 still runs */
    assert_int_equal(crm_evorder_next(&o, &s3, both, 2, &again), 2);
    assert_int_equal(o.cursor, 637);
    assert_int_equal(again, 0);
    crm_snap_free(&s1);
    crm_snap_free(&s2);
    crm_snap_free(&s3);
    crm_evorder_free(&o);
}

static void
test_aborted_gap_is_skipped_once_its_snapshot_ended(void **state)
{
    struct crm_evorder o = {.cursor = 1};
    struct crm_snap s1 = snap("50:52:50"), s2 = snap("53:53:");
    const int64_t ids[] = {3, 4};
    int again;

    (void)state;
    s1.next = 53;
    assert_int_equal(crm_evorder_next(&o, &s1, ids, 2, &again), 0);
    assert_int_equal(again, 1);
    /* 50 ended and 2 never appeared: it was aborted. */
    assert_int_equal(crm_evorder_next(&o, &s2, ids, 2, &again), 2);
    assert_int_equal(o.cursor, 4);
    assert_int_equal(again, 0);
    crm_snap_free(&s1);
    crm_snap_free(&s2);
    crm_evorder_free(&o);
}

static void
test_nothing_running_means_every_gap_is_final(void **state)
{
    struct crm_evorder o = {.cursor = 10};
    struct crm_snap s = snap("90:90:");
    const int64_t ids[] = {12, 20};
    int again;

    (void)state;
    assert_int_equal(crm_evorder_next(&o, &s, ids, 2, &again), 0); /* next unknown */
    assert_int_equal(again, 1);
    s.next = 90; /* the reader's own xid came next: nothing else was running */
    assert_int_equal(crm_evorder_next(&o, &s, ids, 2, &again), 2);
    assert_int_equal(o.cursor, 20);
    assert_int_equal(again, 0);
    assert_int_equal(crm_evorder_next(&o, &s, ids, 0, &again), 0);
    crm_snap_free(&s);
}

static void
test_start_waits_for_transactions_in_progress(void **state)
{
    struct crm_evorder o = {0};
    struct crm_snap busy = snap("10:12:10,11"), half = snap("11:13:11"), done = snap("13:13:");

    (void)state;
    busy.next = 13;
    assert_int_equal(crm_evorder_start(&o, &busy, 40), 0);
    assert_int_equal(crm_evorder_start(&o, &half, 45), 0);
    assert_int_equal(crm_evorder_start(&o, &done, 46), 1);
    assert_int_equal(o.cursor, 40); /* the horizon of the first look; 41.. come as events */
    assert_false(o.barrier);
    crm_evorder_free(&o);
    done.next = 13;
    assert_int_equal(crm_evorder_start(&o, &done, 7), 1);
    assert_int_equal(o.cursor, 7);
    crm_snap_free(&busy);
    crm_snap_free(&half);
    crm_snap_free(&done);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snap_parse),
        cmocka_unit_test(test_contiguous_ids_go_at_once),
        cmocka_unit_test(test_gap_waits_for_the_transactions_in_progress),
        cmocka_unit_test(test_running_xid_at_or_above_xmax_still_holds_a_gap),
        cmocka_unit_test(test_aborted_gap_is_skipped_once_its_snapshot_ended),
        cmocka_unit_test(test_nothing_running_means_every_gap_is_final),
        cmocka_unit_test(test_start_waits_for_transactions_in_progress),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
