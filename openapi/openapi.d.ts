/* Generated from openapi/openapi.json by scripts/openapi.mjs (openapi-typescript). Do not edit. */
export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness: the process is up */
        get: operations["getHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness: database and queue reachable */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Prometheus metrics */
        get: operations["getMetrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sync": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Accept an object-change notification (S3, EventBridge, OSS, MinIO, DTH or OMS format) */
        post: operations["postSync"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v2/{project_id}/sync-tasks/{task_id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Huawei OMS-compatible sync request: {"object_keys": [URL-encoded keys]} */
        post: operations["postOmsSyncEvents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List tasks (config-file and API-managed)
         * @description Scope bb:read.
         */
        get: operations["listTasks"];
        put?: never;
        /**
         * Create a task
         * @description Scope bb:write. The body is a task exactly as in the config file; credentials name env vars that must be set on the server. A destination that is its own source (same provider, endpoint, bucket, overlapping prefixes) is refused with REPLICATION_LOOP.
         */
        post: operations["createTask"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a task
         * @description Scope bb:read.
         */
        get: operations["getTask"];
        /**
         * Replace an API-managed task
         * @description Scope bb:write. Same rules as create; the paused state is kept. Config-file tasks: 409 MANAGED_BY_CONFIG.
         */
        put: operations["replaceTask"];
        post?: never;
        /**
         * Delete an API-managed task
         * @description Scope bb:write. Removes the task, its status rows and its jobs not yet started. Config-file tasks: 409 MANAGED_BY_CONFIG.
         */
        delete: operations["deleteTask"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/pause": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Pause a task: events are still accepted and queued, nothing is copied
         * @description Scope bb:write. Every process sees the change within BB_REFRESH_INTERVAL_MS; jobs of a paused task wait and are re-examined every 30 s. Idempotent. Config-file tasks: 409 MANAGED_BY_CONFIG.
         */
        post: operations["pauseTask"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/resume": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Resume a paused task
         * @description Scope bb:write. Every process sees the change within BB_REFRESH_INTERVAL_MS; jobs of a paused task wait and are re-examined every 30 s. Idempotent. Config-file tasks: 409 MANAGED_BY_CONFIG.
         */
        post: operations["resumeTask"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Replication status of a task: counts, bytes, jobs, lag, last success and failure, 5-minute throughput
         * @description Scope bb:read. lagSeconds is the age of the oldest change not yet replicated: the oldest queued, retrying or running job (counted from its first enqueue) or the oldest pending status row; 0 when nothing is outstanding.
         */
        get: operations["getTaskStatus"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/objects": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Per-object records of a task, in key order, keyset-paginated
         * @description Scope bb:read. Follow nextCursor with the same filters; a cursor that was altered or belongs to other filters is refused (400 INVALID_CURSOR).
         */
        get: operations["listTaskObjects"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/objects/{key}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * One object: its status record (attempts, last error, checksums) and its pending job
         * @description Scope bb:read. The key is URL-encoded as one path segment (slashes as %2F).
         */
        get: operations["getTaskObject"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/objects/{key}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Re-queue one key (trigger retry)
         * @description Scope bb:write. The worker reconciles the key again from the current state of both sides. A key already queued counts as a duplicate. A paused task queues the job and copies once resumed. Keys outside the task prefixes: 400 KEY_OUT_OF_SCOPE.
         */
        post: operations["retryTaskObject"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/retry-failed": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Re-queue every failed key of a task (trigger retry)
         * @description Scope bb:write. Answers how many failed keys were found, newly queued, and already queued.
         */
        post: operations["retryFailedObjects"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/senders": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List senders (config-file and API-managed); secrets are never shown
         * @description Scope bb:read.
         */
        get: operations["listSenders"];
        put?: never;
        /**
         * Create a sender; the answer carries its secret, shown only this once
         * @description Scope bb:write. Needs BB_MASTER_KEY on the server (503 MASTER_KEY_REQUIRED otherwise). accessKeyId is generated when absent; tasks must exist. The sender can sign POST /sync at once on this process, on the others within BB_REFRESH_INTERVAL_MS.
         */
        post: operations["createSender"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/senders/{accessKeyId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Get a sender (never its secret)
         * @description Scope bb:read.
         */
        get: operations["getSender"];
        put?: never;
        post?: never;
        /**
         * Delete a sender
         * @description Scope bb:write.
         */
        delete: operations["deleteSender"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/senders/{accessKeyId}/rotate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Rotate a sender secret: the answer carries the new secret; the old one works until previousSecretValidUntil
         * @description Scope bb:write. Default overlap 24 hours, at most 30 days; a past time revokes the old secret at once.
         */
        post: operations["rotateSenderSecret"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/senders/{accessKeyId}/disable": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Disable a sender: its requests are refused (401 UNKNOWN_ACCESS_KEY)
         * @description Scope bb:write. Idempotent.
         */
        post: operations["disableSender"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/senders/{accessKeyId}/enable": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Enable a disabled sender
         * @description Scope bb:write. Idempotent.
         */
        post: operations["enableSender"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/intake": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Accepted intake requests, newest first, keyset-paginated; filter by sender and/or task
         * @description Scope bb:read. Follow nextCursor with the same filters (400 INVALID_CURSOR otherwise).
         */
        get: operations["listIntakeLedger"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/scans": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List the scans of a task, newest first
         * @description Scope bb:read.
         */
        get: {
            parameters: {
                query?: {
                    limit?: number;
                    state?: "queued" | "running" | "completed" | "failed" | "cancelled" | "skipped";
                    /** @description only scans created before this instant (the createdAt of the last one seen) */
                    before?: string;
                };
                header?: never;
                path: {
                    /** @description task id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            scans: {
                                /** Format: uuid */
                                id: string;
                                taskId: string;
                                /** @enum {string} */
                                state: "queued" | "running" | "completed" | "failed" | "cancelled" | "skipped";
                                /** @enum {string} */
                                trigger: "api" | "cli" | "schedule" | "once";
                                /** @description the admin token’s subject, when started through the API */
                                requestedBy: string | null;
                                scope: {
                                    /** @enum {string} */
                                    mode: "bucket" | "prefixes" | "prefix-list";
                                    /** @description list only keys under these prefixes */
                                    prefixes?: string[];
                                    /** @description an object holding one prefix per line (as DTH’s prefix-list file), read when the scan starts; at most 8 MiB / 100,000 lines */
                                    prefixList?: {
                                        key: string;
                                        /** @description bucket holding it (same endpoint and credentials as the source); default the source bucket */
                                        bucket?: string;
                                    };
                                    /** @description globs (* ** ? [..] {a,b}); a key is scanned when it matches any of them */
                                    include?: string[];
                                    /** @description globs; a key matching any of them is not scanned */
                                    exclude?: string[];
                                    /** @description bytes, inclusive (judged on the source object, or the destination’s when only it exists) */
                                    minSize?: number;
                                    /** @description bytes, inclusive */
                                    maxSize?: number;
                                    /**
                                     * Format: date-time
                                     * @description only objects last modified after this instant
                                     */
                                    modifiedAfter?: string;
                                };
                                listed: {
                                    source: number;
                                    destination: number;
                                    /** @description list requests made, both sides */
                                    requests: number;
                                };
                                /** @description keys present on both sides that were compared */
                                compared: number;
                                /** @description keys left out by minSize / maxSize / modifiedAfter */
                                filtered: number;
                                differences: {
                                    /** @description only in the source */
                                    missing: number;
                                    /** @description sizes differ */
                                    size: number;
                                    /** @description same size, different content (by the task’s compare rule) */
                                    content: number;
                                    /** @description only in the destination (queued as deletes only when the task allows deletes) */
                                    extra: number;
                                    /** @description compare is none: queued without comparing */
                                    uncompared: number;
                                    total: number;
                                };
                                /** @description how equal keys of equal size were recognised */
                                same: {
                                    byStatus: number;
                                    byEtag: number;
                                    byHead: number;
                                };
                                /** @description HEAD requests made to compare content */
                                heads: number;
                                /** @description differing keys not queued: archived sources the task does not restore, already recorded as archived */
                                archived: number;
                                jobs: {
                                    queued: number;
                                    /** @description differences whose key already had a queued job */
                                    alreadyQueued: number;
                                };
                                /** @description runs begun (an interrupted scan resumes from its position) */
                                attempts: number;
                                /** @description every key up to this one has been compared and queued */
                                position: string | null;
                                /** @description skipped: the active scan of the task at the time */
                                skippedFor: string | null;
                                error: string | null;
                                /** Format: date-time */
                                createdAt: string;
                                /** Format: date-time */
                                startedAt: string | null;
                                /** Format: date-time */
                                heartbeatAt: string | null;
                                /** Format: date-time */
                                finishedAt: string | null;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description NOT_FOUND: no such task */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
            };
        };
        put?: never;
        /**
         * Start a reconciliation scan of a task
         * @description Scope bb:write. Lists source and destination in key order, merge-joins them and queues a reconcile job for every key missing on the destination, differing in size or content, or (when the task allows deletes) only on the destination. The body is optional. One scan per task runs at a time: a request while one is queued or running is recorded as skipped (409).
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description task id */
                    id: string;
                };
                cookie?: never;
            };
            /** @description What to scan. Neither prefixes nor prefixList: the task’s whole scope (its source prefixes, or the whole bucket). Prefixes are always intersected with the task’s own prefixes: a scan never reaches outside its task. */
            requestBody: {
                content: {
                    "application/json": {
                        /** @description list only keys under these prefixes */
                        prefixes?: string[];
                        /** @description an object holding one prefix per line (as DTH’s prefix-list file), read when the scan starts; at most 8 MiB / 100,000 lines */
                        prefixList?: {
                            key: string;
                            /** @description bucket holding it (same endpoint and credentials as the source); default the source bucket */
                            bucket?: string;
                        };
                        /** @description globs (* ** ? [..] {a,b}); a key is scanned when it matches any of them */
                        include?: string[];
                        /** @description globs; a key matching any of them is not scanned */
                        exclude?: string[];
                        /** @description bytes, inclusive (judged on the source object, or the destination’s when only it exists) */
                        minSize?: number;
                        /** @description bytes, inclusive */
                        maxSize?: number;
                        /**
                         * Format: date-time
                         * @description only objects last modified after this instant
                         */
                        modifiedAfter?: string;
                    };
                };
            };
            responses: {
                /** @description queued */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** Format: uuid */
                            id: string;
                            taskId: string;
                            /** @enum {string} */
                            state: "queued" | "running" | "completed" | "failed" | "cancelled" | "skipped";
                            /** @enum {string} */
                            trigger: "api" | "cli" | "schedule" | "once";
                            /** @description the admin token’s subject, when started through the API */
                            requestedBy: string | null;
                            scope: {
                                /** @enum {string} */
                                mode: "bucket" | "prefixes" | "prefix-list";
                                /** @description list only keys under these prefixes */
                                prefixes?: string[];
                                /** @description an object holding one prefix per line (as DTH’s prefix-list file), read when the scan starts; at most 8 MiB / 100,000 lines */
                                prefixList?: {
                                    key: string;
                                    /** @description bucket holding it (same endpoint and credentials as the source); default the source bucket */
                                    bucket?: string;
                                };
                                /** @description globs (* ** ? [..] {a,b}); a key is scanned when it matches any of them */
                                include?: string[];
                                /** @description globs; a key matching any of them is not scanned */
                                exclude?: string[];
                                /** @description bytes, inclusive (judged on the source object, or the destination’s when only it exists) */
                                minSize?: number;
                                /** @description bytes, inclusive */
                                maxSize?: number;
                                /**
                                 * Format: date-time
                                 * @description only objects last modified after this instant
                                 */
                                modifiedAfter?: string;
                            };
                            listed: {
                                source: number;
                                destination: number;
                                /** @description list requests made, both sides */
                                requests: number;
                            };
                            /** @description keys present on both sides that were compared */
                            compared: number;
                            /** @description keys left out by minSize / maxSize / modifiedAfter */
                            filtered: number;
                            differences: {
                                /** @description only in the source */
                                missing: number;
                                /** @description sizes differ */
                                size: number;
                                /** @description same size, different content (by the task’s compare rule) */
                                content: number;
                                /** @description only in the destination (queued as deletes only when the task allows deletes) */
                                extra: number;
                                /** @description compare is none: queued without comparing */
                                uncompared: number;
                                total: number;
                            };
                            /** @description how equal keys of equal size were recognised */
                            same: {
                                byStatus: number;
                                byEtag: number;
                                byHead: number;
                            };
                            /** @description HEAD requests made to compare content */
                            heads: number;
                            /** @description differing keys not queued: archived sources the task does not restore, already recorded as archived */
                            archived: number;
                            jobs: {
                                queued: number;
                                /** @description differences whose key already had a queued job */
                                alreadyQueued: number;
                            };
                            /** @description runs begun (an interrupted scan resumes from its position) */
                            attempts: number;
                            /** @description every key up to this one has been compared and queued */
                            position: string | null;
                            /** @description skipped: the active scan of the task at the time */
                            skippedFor: string | null;
                            error: string | null;
                            /** Format: date-time */
                            createdAt: string;
                            /** Format: date-time */
                            startedAt: string | null;
                            /** Format: date-time */
                            heartbeatAt: string | null;
                            /** Format: date-time */
                            finishedAt: string | null;
                        };
                    };
                };
                /** @description VALIDATION_FAILED, INVALID_SCAN_REQUEST (naming the field), INVALID_JSON */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description NOT_FOUND: no such task */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description SCAN_ALREADY_ACTIVE: recorded as a skipped scan; the message names it and the active scan */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/tasks/{id}/scans/{scanId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A scan: state, keys listed per side, differences by kind, jobs queued, times, error
         * @description Scope bb:read.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description task id */
                    id: string;
                    scanId: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** Format: uuid */
                            id: string;
                            taskId: string;
                            /** @enum {string} */
                            state: "queued" | "running" | "completed" | "failed" | "cancelled" | "skipped";
                            /** @enum {string} */
                            trigger: "api" | "cli" | "schedule" | "once";
                            /** @description the admin token’s subject, when started through the API */
                            requestedBy: string | null;
                            scope: {
                                /** @enum {string} */
                                mode: "bucket" | "prefixes" | "prefix-list";
                                /** @description list only keys under these prefixes */
                                prefixes?: string[];
                                /** @description an object holding one prefix per line (as DTH’s prefix-list file), read when the scan starts; at most 8 MiB / 100,000 lines */
                                prefixList?: {
                                    key: string;
                                    /** @description bucket holding it (same endpoint and credentials as the source); default the source bucket */
                                    bucket?: string;
                                };
                                /** @description globs (* ** ? [..] {a,b}); a key is scanned when it matches any of them */
                                include?: string[];
                                /** @description globs; a key matching any of them is not scanned */
                                exclude?: string[];
                                /** @description bytes, inclusive (judged on the source object, or the destination’s when only it exists) */
                                minSize?: number;
                                /** @description bytes, inclusive */
                                maxSize?: number;
                                /**
                                 * Format: date-time
                                 * @description only objects last modified after this instant
                                 */
                                modifiedAfter?: string;
                            };
                            listed: {
                                source: number;
                                destination: number;
                                /** @description list requests made, both sides */
                                requests: number;
                            };
                            /** @description keys present on both sides that were compared */
                            compared: number;
                            /** @description keys left out by minSize / maxSize / modifiedAfter */
                            filtered: number;
                            differences: {
                                /** @description only in the source */
                                missing: number;
                                /** @description sizes differ */
                                size: number;
                                /** @description same size, different content (by the task’s compare rule) */
                                content: number;
                                /** @description only in the destination (queued as deletes only when the task allows deletes) */
                                extra: number;
                                /** @description compare is none: queued without comparing */
                                uncompared: number;
                                total: number;
                            };
                            /** @description how equal keys of equal size were recognised */
                            same: {
                                byStatus: number;
                                byEtag: number;
                                byHead: number;
                            };
                            /** @description HEAD requests made to compare content */
                            heads: number;
                            /** @description differing keys not queued: archived sources the task does not restore, already recorded as archived */
                            archived: number;
                            jobs: {
                                queued: number;
                                /** @description differences whose key already had a queued job */
                                alreadyQueued: number;
                            };
                            /** @description runs begun (an interrupted scan resumes from its position) */
                            attempts: number;
                            /** @description every key up to this one has been compared and queued */
                            position: string | null;
                            /** @description skipped: the active scan of the task at the time */
                            skippedFor: string | null;
                            error: string | null;
                            /** Format: date-time */
                            createdAt: string;
                            /** Format: date-time */
                            startedAt: string | null;
                            /** Format: date-time */
                            heartbeatAt: string | null;
                            /** Format: date-time */
                            finishedAt: string | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description NOT_FOUND: no such task or scan */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        /**
         * Cancel a queued or running scan
         * @description Scope bb:write. A running scan stops at its next progress check (about a second); reconcile jobs it already queued stay queued.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description task id */
                    id: string;
                    scanId: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description cancelled */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** Format: uuid */
                            id: string;
                            taskId: string;
                            /** @enum {string} */
                            state: "queued" | "running" | "completed" | "failed" | "cancelled" | "skipped";
                            /** @enum {string} */
                            trigger: "api" | "cli" | "schedule" | "once";
                            /** @description the admin token’s subject, when started through the API */
                            requestedBy: string | null;
                            scope: {
                                /** @enum {string} */
                                mode: "bucket" | "prefixes" | "prefix-list";
                                /** @description list only keys under these prefixes */
                                prefixes?: string[];
                                /** @description an object holding one prefix per line (as DTH’s prefix-list file), read when the scan starts; at most 8 MiB / 100,000 lines */
                                prefixList?: {
                                    key: string;
                                    /** @description bucket holding it (same endpoint and credentials as the source); default the source bucket */
                                    bucket?: string;
                                };
                                /** @description globs (* ** ? [..] {a,b}); a key is scanned when it matches any of them */
                                include?: string[];
                                /** @description globs; a key matching any of them is not scanned */
                                exclude?: string[];
                                /** @description bytes, inclusive (judged on the source object, or the destination’s when only it exists) */
                                minSize?: number;
                                /** @description bytes, inclusive */
                                maxSize?: number;
                                /**
                                 * Format: date-time
                                 * @description only objects last modified after this instant
                                 */
                                modifiedAfter?: string;
                            };
                            listed: {
                                source: number;
                                destination: number;
                                /** @description list requests made, both sides */
                                requests: number;
                            };
                            /** @description keys present on both sides that were compared */
                            compared: number;
                            /** @description keys left out by minSize / maxSize / modifiedAfter */
                            filtered: number;
                            differences: {
                                /** @description only in the source */
                                missing: number;
                                /** @description sizes differ */
                                size: number;
                                /** @description same size, different content (by the task’s compare rule) */
                                content: number;
                                /** @description only in the destination (queued as deletes only when the task allows deletes) */
                                extra: number;
                                /** @description compare is none: queued without comparing */
                                uncompared: number;
                                total: number;
                            };
                            /** @description how equal keys of equal size were recognised */
                            same: {
                                byStatus: number;
                                byEtag: number;
                                byHead: number;
                            };
                            /** @description HEAD requests made to compare content */
                            heads: number;
                            /** @description differing keys not queued: archived sources the task does not restore, already recorded as archived */
                            archived: number;
                            jobs: {
                                queued: number;
                                /** @description differences whose key already had a queued job */
                                alreadyQueued: number;
                            };
                            /** @description runs begun (an interrupted scan resumes from its position) */
                            attempts: number;
                            /** @description every key up to this one has been compared and queued */
                            position: string | null;
                            /** @description skipped: the active scan of the task at the time */
                            skippedFor: string | null;
                            error: string | null;
                            /** Format: date-time */
                            createdAt: string;
                            /** Format: date-time */
                            startedAt: string | null;
                            /** Format: date-time */
                            heartbeatAt: string | null;
                            /** Format: date-time */
                            finishedAt: string | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description NOT_FOUND: no such task or scan */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description SCAN_FINISHED: the scan had already ended */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
                /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ErrorResponse"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This OpenAPI 3 document */
        get: operations["getOpenApiDocument"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        ErrorResponse: {
            error: {
                code: string;
                message: string;
                field?: string;
            };
        };
        TaskInput: {
            id: string;
            source: {
                /** @enum {string} */
                provider: "s3" | "oss";
                bucket: string;
                region?: string;
                /** Format: uri */
                endpoint?: string;
                forcePathStyle?: boolean;
                credentials?: {
                    /** @description Name of the env var holding the access key id */
                    accessKeyIdEnv: string;
                    /** @description Name of the env var holding the secret */
                    secretAccessKeyEnv: string;
                    sessionTokenEnv?: string;
                };
                prefixes?: string[];
                /** @description PEM CA bundle the https endpoint's certificate must chain to (private endpoints); replaces the default roots */
                caBundleFile?: string;
                /** @description Env var holding the 256-bit SSE-C key (base64 or hex) to read customer-key-encrypted source objects (S3 only) */
                sseCustomerKeyEnv?: string;
            };
            destination: {
                /** @enum {string} */
                provider: "s3" | "oss";
                bucket: string;
                region?: string;
                /** Format: uri */
                endpoint?: string;
                forcePathStyle?: boolean;
                credentials?: {
                    /** @description Name of the env var holding the access key id */
                    accessKeyIdEnv: string;
                    /** @description Name of the env var holding the secret */
                    secretAccessKeyEnv: string;
                    sessionTokenEnv?: string;
                };
                prefixes?: string[];
                /** @description PEM CA bundle the https endpoint's certificate must chain to (private endpoints); replaces the default roots */
                caBundleFile?: string;
                encryption?: {
                    /**
                     * @description S3: AES256 | aws:kms; OSS: AES256 | KMS
                     * @enum {string}
                     */
                    mode: "AES256" | "aws:kms" | "KMS";
                    /** @description KMS key id/ARN; only with aws:kms (S3) or KMS (OSS) */
                    keyId?: string;
                };
            };
            /** @default {} */
            options?: {
                /** @default false */
                deletes?: boolean;
                /**
                 * @default checksum
                 * @enum {string}
                 */
                compare?: "checksum" | "size" | "none";
                markers?: {
                    bucket: string;
                    /** @default bb_records */
                    prefix?: string;
                    /**
                     * @default destination
                     * @enum {string}
                     */
                    side?: "source" | "destination";
                };
                /** @default 16777216 */
                multipartThresholdBytes?: number;
                /** @default 8388608 */
                partSizeBytes?: number;
                /** @default 4 */
                partConcurrency?: number;
                /** @default 16 */
                maxConcurrentCopies?: number;
                /** @enum {string} */
                storageClass?: "STANDARD" | "STANDARD_IA" | "ARCHIVE";
                /** @default false */
                restoreArchived?: boolean;
                clientSideEncryption?: {
                    /** @description RSA public key (PEM/DER, >= 2048 bits) or certificate */
                    publicKeyFile: string;
                    /**
                     * @default AES-256-CTR
                     * @enum {string}
                     */
                    algorithm?: "AES-256-CTR";
                };
                limits?: {
                    /** @description Object bytes copied per second (read from the source) */
                    bytesPerSecond?: number;
                    /** @description Storage requests per second, both sides */
                    requestsPerSecond?: number;
                };
                alerts?: {
                    /**
                     * Format: uri
                     * @description Receiver of the alerts (POST, JSON body, SDK-HMAC-SHA256 signed)
                     */
                    url: string;
                    /** @description Env var holding the secret the alerts are signed with */
                    secretEnv: string;
                    /**
                     * @description Access key id in the Authorization header
                     * @default bucketbridge
                     */
                    accessKeyId?: string;
                    /** @description Alert when replication lag passes this many seconds; absent: no lag alerts */
                    lagSeconds?: number;
                    /**
                     * @description The same alert (kind, and key for key failures) is sent at most once per this many seconds
                     * @default 3600
                     */
                    dedupeSeconds?: number;
                    /**
                     * @description Alerts per minute for the task; past it they are counted and reported in the next one
                     * @default 20
                     */
                    maxPerMinute?: number;
                };
            };
            /**
             * @default {
             *       "mode": "none"
             *     }
             */
            schedule?: {
                /** @enum {string} */
                mode: "none" | "once" | "rate" | "cron";
                every?: string;
                expression?: string;
            };
        };
        TaskUpdate: {
            /** @description must equal the path id when given */
            id?: string;
            source: {
                /** @enum {string} */
                provider: "s3" | "oss";
                bucket: string;
                region?: string;
                /** Format: uri */
                endpoint?: string;
                forcePathStyle?: boolean;
                credentials?: {
                    /** @description Name of the env var holding the access key id */
                    accessKeyIdEnv: string;
                    /** @description Name of the env var holding the secret */
                    secretAccessKeyEnv: string;
                    sessionTokenEnv?: string;
                };
                prefixes?: string[];
                /** @description PEM CA bundle the https endpoint's certificate must chain to (private endpoints); replaces the default roots */
                caBundleFile?: string;
                /** @description Env var holding the 256-bit SSE-C key (base64 or hex) to read customer-key-encrypted source objects (S3 only) */
                sseCustomerKeyEnv?: string;
            };
            destination: {
                /** @enum {string} */
                provider: "s3" | "oss";
                bucket: string;
                region?: string;
                /** Format: uri */
                endpoint?: string;
                forcePathStyle?: boolean;
                credentials?: {
                    /** @description Name of the env var holding the access key id */
                    accessKeyIdEnv: string;
                    /** @description Name of the env var holding the secret */
                    secretAccessKeyEnv: string;
                    sessionTokenEnv?: string;
                };
                prefixes?: string[];
                /** @description PEM CA bundle the https endpoint's certificate must chain to (private endpoints); replaces the default roots */
                caBundleFile?: string;
                encryption?: {
                    /**
                     * @description S3: AES256 | aws:kms; OSS: AES256 | KMS
                     * @enum {string}
                     */
                    mode: "AES256" | "aws:kms" | "KMS";
                    /** @description KMS key id/ARN; only with aws:kms (S3) or KMS (OSS) */
                    keyId?: string;
                };
            };
            /** @default {} */
            options?: {
                /** @default false */
                deletes?: boolean;
                /**
                 * @default checksum
                 * @enum {string}
                 */
                compare?: "checksum" | "size" | "none";
                markers?: {
                    bucket: string;
                    /** @default bb_records */
                    prefix?: string;
                    /**
                     * @default destination
                     * @enum {string}
                     */
                    side?: "source" | "destination";
                };
                /** @default 16777216 */
                multipartThresholdBytes?: number;
                /** @default 8388608 */
                partSizeBytes?: number;
                /** @default 4 */
                partConcurrency?: number;
                /** @default 16 */
                maxConcurrentCopies?: number;
                /** @enum {string} */
                storageClass?: "STANDARD" | "STANDARD_IA" | "ARCHIVE";
                /** @default false */
                restoreArchived?: boolean;
                clientSideEncryption?: {
                    /** @description RSA public key (PEM/DER, >= 2048 bits) or certificate */
                    publicKeyFile: string;
                    /**
                     * @default AES-256-CTR
                     * @enum {string}
                     */
                    algorithm?: "AES-256-CTR";
                };
                limits?: {
                    /** @description Object bytes copied per second (read from the source) */
                    bytesPerSecond?: number;
                    /** @description Storage requests per second, both sides */
                    requestsPerSecond?: number;
                };
                alerts?: {
                    /**
                     * Format: uri
                     * @description Receiver of the alerts (POST, JSON body, SDK-HMAC-SHA256 signed)
                     */
                    url: string;
                    /** @description Env var holding the secret the alerts are signed with */
                    secretEnv: string;
                    /**
                     * @description Access key id in the Authorization header
                     * @default bucketbridge
                     */
                    accessKeyId?: string;
                    /** @description Alert when replication lag passes this many seconds; absent: no lag alerts */
                    lagSeconds?: number;
                    /**
                     * @description The same alert (kind, and key for key failures) is sent at most once per this many seconds
                     * @default 3600
                     */
                    dedupeSeconds?: number;
                    /**
                     * @description Alerts per minute for the task; past it they are counted and reported in the next one
                     * @default 20
                     */
                    maxPerMinute?: number;
                };
            };
            /**
             * @default {
             *       "mode": "none"
             *     }
             */
            schedule?: {
                /** @enum {string} */
                mode: "none" | "once" | "rate" | "cron";
                every?: string;
                expression?: string;
            };
        };
        Task: {
            id: string;
            source: {
                /** @enum {string} */
                provider: "s3" | "oss";
                bucket: string;
                region?: string;
                /** Format: uri */
                endpoint?: string;
                forcePathStyle?: boolean;
                credentials?: {
                    /** @description Name of the env var holding the access key id */
                    accessKeyIdEnv: string;
                    /** @description Name of the env var holding the secret */
                    secretAccessKeyEnv: string;
                    sessionTokenEnv?: string;
                };
                prefixes?: string[];
                /** @description PEM CA bundle the https endpoint's certificate must chain to (private endpoints); replaces the default roots */
                caBundleFile?: string;
                /** @description Env var holding the 256-bit SSE-C key (base64 or hex) to read customer-key-encrypted source objects (S3 only) */
                sseCustomerKeyEnv?: string;
            };
            destination: {
                /** @enum {string} */
                provider: "s3" | "oss";
                bucket: string;
                region?: string;
                /** Format: uri */
                endpoint?: string;
                forcePathStyle?: boolean;
                credentials?: {
                    /** @description Name of the env var holding the access key id */
                    accessKeyIdEnv: string;
                    /** @description Name of the env var holding the secret */
                    secretAccessKeyEnv: string;
                    sessionTokenEnv?: string;
                };
                prefixes?: string[];
                /** @description PEM CA bundle the https endpoint's certificate must chain to (private endpoints); replaces the default roots */
                caBundleFile?: string;
                encryption?: {
                    /**
                     * @description S3: AES256 | aws:kms; OSS: AES256 | KMS
                     * @enum {string}
                     */
                    mode: "AES256" | "aws:kms" | "KMS";
                    /** @description KMS key id/ARN; only with aws:kms (S3) or KMS (OSS) */
                    keyId?: string;
                };
            };
            options: {
                /** @default false */
                deletes?: boolean;
                /**
                 * @default checksum
                 * @enum {string}
                 */
                compare?: "checksum" | "size" | "none";
                markers?: {
                    bucket: string;
                    /** @default bb_records */
                    prefix?: string;
                    /**
                     * @default destination
                     * @enum {string}
                     */
                    side?: "source" | "destination";
                };
                /** @default 16777216 */
                multipartThresholdBytes?: number;
                /** @default 8388608 */
                partSizeBytes?: number;
                /** @default 4 */
                partConcurrency?: number;
                /** @default 16 */
                maxConcurrentCopies?: number;
                /** @enum {string} */
                storageClass?: "STANDARD" | "STANDARD_IA" | "ARCHIVE";
                /** @default false */
                restoreArchived?: boolean;
                clientSideEncryption?: {
                    /** @description RSA public key (PEM/DER, >= 2048 bits) or certificate */
                    publicKeyFile: string;
                    /**
                     * @default AES-256-CTR
                     * @enum {string}
                     */
                    algorithm?: "AES-256-CTR";
                };
                limits?: {
                    /** @description Object bytes copied per second (read from the source) */
                    bytesPerSecond?: number;
                    /** @description Storage requests per second, both sides */
                    requestsPerSecond?: number;
                };
                alerts?: {
                    /**
                     * Format: uri
                     * @description Receiver of the alerts (POST, JSON body, SDK-HMAC-SHA256 signed)
                     */
                    url: string;
                    /** @description Env var holding the secret the alerts are signed with */
                    secretEnv: string;
                    /**
                     * @description Access key id in the Authorization header
                     * @default bucketbridge
                     */
                    accessKeyId?: string;
                    /** @description Alert when replication lag passes this many seconds; absent: no lag alerts */
                    lagSeconds?: number;
                    /**
                     * @description The same alert (kind, and key for key failures) is sent at most once per this many seconds
                     * @default 3600
                     */
                    dedupeSeconds?: number;
                    /**
                     * @description Alerts per minute for the task; past it they are counted and reported in the next one
                     * @default 20
                     */
                    maxPerMinute?: number;
                };
            };
            schedule: {
                /** @enum {string} */
                mode: "none" | "once" | "rate" | "cron";
                every?: string;
                expression?: string;
            };
            /**
             * @description config: from the config file, read-only here
             * @enum {string}
             */
            managedBy: "config" | "api";
            /** @description a paused task queues events but copies nothing until resumed */
            paused: boolean;
            /** Format: date-time */
            createdAt: string;
            /** Format: date-time */
            updatedAt: string;
        };
        TaskStatus: {
            taskId: string;
            paused: boolean;
            /** @description status rows by status */
            objects: {
                pending: number;
                completed: number;
                in_sync: number;
                deleted: number;
                source_missing: number;
                archived: number;
                failed: number;
                total: number;
            };
            /** @description sum of the bytes of objects whose last copy completed */
            bytesReplicated: number;
            jobs: {
                queued: number;
                active: number;
                retrying: number;
                /** @description in bb-replicate-dead (kept 30 days) */
                deadLettered: number;
            };
            /** @description age of the oldest change not yet replicated; 0 when none */
            lagSeconds: number;
            /** Format: date-time */
            oldestUnreplicatedAt: string | null;
            lastSuccess: {
                key: string;
                status: string;
                /** Format: date-time */
                at: string;
            } | null;
            lastFailure: {
                key: string;
                /** @description failed (final) or pending (will retry) */
                status: string;
                /** Format: date-time */
                at: string;
                code: string | null;
                message: string | null;
            } | null;
            throughput: {
                windowSeconds: number;
                /** @description objects finished (completed, in_sync, deleted, source_missing) in the window */
                objects: number;
                /** @description bytes copied in the window */
                bytes: number;
                objectsPerSecond: number;
                bytesPerSecond: number;
            };
        };
        ObjectRecord: {
            key: string;
            /** @enum {string} */
            status: "pending" | "completed" | "in_sync" | "deleted" | "source_missing" | "archived" | "failed";
            attempts: number;
            /** @description bytes written by the last copy */
            bytes: number | null;
            sourceEtag: string | null;
            sourceCrc64: string | null;
            destinationEtag: string | null;
            durationMs: number | null;
            lastError: {
                code: string | null;
                message: string | null;
            } | null;
            /** Format: date-time */
            firstSeenAt: string;
            /** Format: date-time */
            updatedAt: string;
            /** Format: date-time */
            completedAt: string | null;
        };
        ObjectDetail: {
            taskId: string;
            key: string;
            /**
             * @description null: queued, never attempted yet
             * @enum {string|null}
             */
            status: "pending" | "completed" | "in_sync" | "deleted" | "source_missing" | "archived" | "failed" | null;
            /** @description the status row: attempts, last error, checksums */
            record: {
                key: string;
                /** @enum {string} */
                status: "pending" | "completed" | "in_sync" | "deleted" | "source_missing" | "archived" | "failed";
                attempts: number;
                /** @description bytes written by the last copy */
                bytes: number | null;
                sourceEtag: string | null;
                sourceCrc64: string | null;
                destinationEtag: string | null;
                durationMs: number | null;
                lastError: {
                    code: string | null;
                    message: string | null;
                } | null;
                /** Format: date-time */
                firstSeenAt: string;
                /** Format: date-time */
                updatedAt: string;
                /** Format: date-time */
                completedAt: string | null;
            } | null;
            /** @description the queued, retrying or running job of this key, if any */
            job: {
                id: string;
                /** @enum {string} */
                state: "created" | "retry" | "active";
                /** Format: date-time */
                createdOn: string;
                /** Format: date-time */
                startAfter: string;
                /** Format: date-time */
                startedOn: string | null;
                retryCount: number;
                retryLimit: number;
            } | null;
        };
        RetryResult: {
            /** @description jobs newly queued */
            queued: number;
            /** @description keys that already had a queued job */
            duplicates: number;
            /** @description retry-failed only: failed keys found */
            failed?: number;
        };
        Sender: {
            accessKeyId: string;
            tasks: string[];
            /** @enum {string} */
            managedBy: "config" | "api";
            disabled: boolean;
            description: string | null;
            /** Format: date-time */
            createdAt: string | null;
            /** Format: date-time */
            updatedAt: string | null;
            /** Format: date-time */
            rotatedAt: string | null;
            /**
             * Format: date-time
             * @description during a rotation: when the old secret stops working
             */
            previousSecretExpiresAt: string | null;
        };
        SenderWithSecret: {
            accessKeyId: string;
            tasks: string[];
            /** @enum {string} */
            managedBy: "config" | "api";
            disabled: boolean;
            description: string | null;
            /** Format: date-time */
            createdAt: string | null;
            /** Format: date-time */
            updatedAt: string | null;
            /** Format: date-time */
            rotatedAt: string | null;
            /**
             * Format: date-time
             * @description during a rotation: when the old secret stops working
             */
            previousSecretExpiresAt: string | null;
            /** @description the signing secret: shown only in this answer, store it now */
            secret: string;
        };
        IntakeLedgerEntry: {
            id: number;
            requestId: string;
            sender: string;
            taskId: string | null;
            format: string;
            accepted: number;
            duplicates: number;
            ignored: number;
            /** Format: date-time */
            receivedAt: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        status?: string;
                        checks?: {
                            [key: string]: string;
                        };
                    };
                };
            };
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        status?: string;
                        checks?: {
                            [key: string]: string;
                        };
                    };
                };
            };
            /** @description Default Response */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        status?: string;
                        checks?: {
                            [key: string]: string;
                        };
                    };
                };
            };
        };
    };
    getMetrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
        };
    };
    postSync: {
        parameters: {
            query?: {
                /** @description route every key to this task */
                task?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description The notification exactly as the sender produced it; the signature covers these bytes. The format is detected from the shape. Keys: S3 records form-URL-encoded (+ is a space), OMS keys percent-encoded, others as is. At most 1,000 keys, 1 MiB. */
        requestBody: {
            content: {
                "application/json": {
                    Records: {
                        [key: string]: unknown;
                    }[];
                } | {
                    "detail-type": string;
                    source: string;
                    detail: {
                        [key: string]: unknown;
                    };
                } | {
                    events: {
                        [key: string]: unknown;
                    }[];
                } | {
                    key: string;
                    size?: number;
                } | {
                    key: string;
                    size?: number;
                }[] | {
                    object_keys: string[];
                };
            };
        };
        responses: {
            /** @description a replay of an accepted request: the first answer again */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        requestId: string;
                        format?: string;
                        /** @description keys newly queued */
                        accepted: number;
                        /** @description keys already queued (collapsed into the queued job) */
                        duplicates: number;
                        /** @description keys deliberately not queued */
                        ignored: number;
                        ignoredReasons?: {
                            reason?: string;
                            count?: number;
                        }[];
                        jobs: {
                            taskId?: string;
                            key?: string;
                            jobId?: string | null;
                        }[];
                        replayed?: boolean;
                    };
                };
            };
            /** @description durably queued */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        requestId: string;
                        format?: string;
                        /** @description keys newly queued */
                        accepted: number;
                        /** @description keys already queued (collapsed into the queued job) */
                        duplicates: number;
                        /** @description keys deliberately not queued */
                        ignored: number;
                        ignoredReasons?: {
                            reason?: string;
                            count?: number;
                        }[];
                        jobs: {
                            taskId?: string;
                            key?: string;
                            jobId?: string | null;
                        }[];
                        replayed?: boolean;
                    };
                };
            };
            /** @description Default Response */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    postOmsSyncEvents: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                project_id: string;
                task_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    object_keys: string[];
                };
            };
        };
        responses: {
            /** @description a replay of an accepted request: the first answer again */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        requestId: string;
                        format?: string;
                        /** @description keys newly queued */
                        accepted: number;
                        /** @description keys already queued (collapsed into the queued job) */
                        duplicates: number;
                        /** @description keys deliberately not queued */
                        ignored: number;
                        ignoredReasons?: {
                            reason?: string;
                            count?: number;
                        }[];
                        jobs: {
                            taskId?: string;
                            key?: string;
                            jobId?: string | null;
                        }[];
                        replayed?: boolean;
                    };
                };
            };
            /** @description durably queued */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        requestId: string;
                        format?: string;
                        /** @description keys newly queued */
                        accepted: number;
                        /** @description keys already queued (collapsed into the queued job) */
                        duplicates: number;
                        /** @description keys deliberately not queued */
                        ignored: number;
                        ignoredReasons?: {
                            reason?: string;
                            count?: number;
                        }[];
                        jobs: {
                            taskId?: string;
                            key?: string;
                            jobId?: string | null;
                        }[];
                        replayed?: boolean;
                    };
                };
            };
            /** @description Default Response */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Default Response */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    listTasks: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        tasks: components["schemas"]["Task"][];
                    };
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    createTask: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TaskInput"];
            };
        };
        responses: {
            /** @description Default Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description VALIDATION_FAILED (naming the field), REPLICATION_LOOP, INVALID_JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description TASK_EXISTS */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description UNSUPPORTED_MEDIA_TYPE: send application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    getTask: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    replaceTask: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TaskUpdate"];
            };
        };
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description VALIDATION_FAILED, REPLICATION_LOOP, INVALID_JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description UNSUPPORTED_MEDIA_TYPE: send application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    deleteTask: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    pauseTask: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    resumeTask: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Task"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    getTaskStatus: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TaskStatus"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    listTaskObjects: {
        parameters: {
            query?: {
                status?: "pending" | "completed" | "in_sync" | "deleted" | "source_missing" | "archived" | "failed";
                prefix?: string;
                limit?: number;
                /** @description nextCursor of the previous page (opaque; same filters required) */
                cursor?: string;
            };
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["ObjectRecord"][];
                        /** @description pass as ?cursor= for the next page; null on the last page */
                        nextCursor: string | null;
                    };
                };
            };
            /** @description VALIDATION_FAILED, INVALID_CURSOR */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    getTaskObject: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
                /** @description object key, URL-encoded as ONE path segment (a/b.txt → a%2Fb.txt, as encodeURIComponent does) */
                key: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ObjectDetail"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    retryTaskObject: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
                /** @description object key, URL-encoded as ONE path segment (a/b.txt → a%2Fb.txt, as encodeURIComponent does) */
                key: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RetryResult"];
                };
            };
            /** @description KEY_OUT_OF_SCOPE, VALIDATION_FAILED */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    retryFailedObjects: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description task id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RetryResult"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    listSenders: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        senders: components["schemas"]["Sender"][];
                    };
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    createSender: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /** @description Access key id; generated (bb-…) when absent */
                    accessKeyId?: string;
                    /** @description Task ids this sender may feed */
                    tasks: string[];
                    description?: string;
                };
            };
        };
        responses: {
            /** @description Default Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SenderWithSecret"];
                };
            };
            /** @description VALIDATION_FAILED (naming the field), INVALID_JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description SENDER_EXISTS */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description UNSUPPORTED_MEDIA_TYPE: send application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    getSender: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                accessKeyId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Sender"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    deleteSender: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                accessKeyId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    rotateSenderSecret: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                accessKeyId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /**
                     * Format: date-time
                     * @description The old secret is accepted until this time (default: 24 hours from now; a past time revokes it at once)
                     */
                    previousSecretValidUntil?: string;
                };
            };
        };
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SenderWithSecret"];
                };
            };
            /** @description VALIDATION_FAILED, INVALID_JSON */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description UNSUPPORTED_MEDIA_TYPE: send application/json */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    disableSender: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                accessKeyId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Sender"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    enableSender: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                accessKeyId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Sender"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description NOT_FOUND: no such task, sender or object */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description MANAGED_BY_CONFIG: defined in the config file, read-only through the API */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    listIntakeLedger: {
        parameters: {
            query?: {
                /** @description access key id */
                sender?: string;
                /** @description task id */
                task?: string;
                limit?: number;
                /** @description nextCursor of the previous page (opaque; same filters required) */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Default Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["IntakeLedgerEntry"][];
                        /** @description pass as ?cursor= for the next page; null on the last page */
                        nextCursor: string | null;
                    };
                };
            };
            /** @description VALIDATION_FAILED, INVALID_CURSOR */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description missing, invalid or expired token (UNAUTHENTICATED, TOKEN_EXPIRED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description the token lacks the scope (INSUFFICIENT_SCOPE) */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description admin API disabled (ADMIN_DISABLED), identity provider or database unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    getOpenApiDocument: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OpenAPI 3.0 document */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        [key: string]: unknown;
                    };
                };
            };
        };
    };
}
