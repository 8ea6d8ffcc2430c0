import { describe, expect, it } from 'vitest'
import { changedInput, createInput, diagnosesInput, parseOffsets, phoneProblem } from './forms'

describe('form inputs', () => {
  it('trims text and sends blanks as null', () => {
    expect(createInput({ name: ' 王五 ', phone: '', age: 3, roles: ['physician'] })).toEqual({ name: '王五', phone: null, age: 3, roles: ['physician'] })
  })
  it('sends only what an edit changed', () => {
    const original = { name: '王五', phone: null, allergies: '青霉素', departmentId: '7' }
    expect(changedInput(original, { name: '王五 ', phone: '', allergies: '无', departmentId: '7' })).toEqual({ allergies: '无' })
    expect(changedInput(original, { name: '王五', phone: '13800138000', allergies: '', departmentId: '8' })).toEqual({
      phone: '13800138000',
      allergies: null,
      departmentId: '8',
    })
  })
  it('gives a visit exactly one primary diagnosis', () => {
    expect(diagnosesInput(['K64.1', 'K60.3', 'K64.1'], null)).toEqual([
      { icd10Code: 'K64.1', isPrimary: true },
      { icd10Code: 'K60.3', isPrimary: false },
    ])
    expect(diagnosesInput(['K64.1', 'K60.3'], 'K60.3').filter((d) => d.isPrimary).map((d) => d.icd10Code)).toEqual(['K60.3'])
    expect(diagnosesInput(['K64.1'], 'gone')).toEqual([{ icd10Code: 'K64.1', isPrimary: true }])
    expect(diagnosesInput([], null)).toEqual([])
  })
  it('checks a mobile number', () => {
    expect(phoneProblem('')).toBe(false)
    expect(phoneProblem('13800138000')).toBe(false)
    expect(phoneProblem('0571-1234')).toBe(true)
  })
})

describe('parseOffsets', () => {
  it('reads day counts separated by commas (Chinese ones too) or spaces, and refuses anything else', () => {
    expect(parseOffsets('7, 30，90')).toEqual([7, 30, 90])
    expect(parseOffsets(' 14 28 ')).toEqual([14, 28])
    expect(parseOffsets('0')).toEqual([0]) // the range is the API's to check
    expect(parseOffsets('7, a')).toBeNull()
    expect(parseOffsets('1.5')).toBeNull()
    expect(parseOffsets('')).toBeNull()
  })
})
