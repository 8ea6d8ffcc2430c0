// The words of the education video, learning task, follow-up, protocol, outcome, ICD-10 and figures pages
// (messages.ts merges them). Coded values (statuses, kinds) are not here: their labels come from the API's
// dictionaries (stores/labels.ts).
export const zhPages = {
  createVideo: '新建视频',
  editVideo: '编辑视频',
  videoUrl: '视频地址',
  coverUrl: '封面地址',
  duration: '时长',
  durationSeconds: '时长（秒）',
  archiveQuestion: '下架「{name}」？患者将不再看到它。',
  publishQuestion: '发布「{name}」？患者将看到它。',
}

export const enPages: Record<keyof typeof zhPages, string> = {
  createVideo: 'New video',
  editVideo: 'Edit video',
  videoUrl: 'Video URL',
  coverUrl: 'Cover URL',
  duration: 'Length',
  durationSeconds: 'Length (seconds)',
  archiveQuestion: 'Archive "{name}"? Patients will no longer see it.',
  publishQuestion: 'Publish "{name}"? Patients will see it.',
}
